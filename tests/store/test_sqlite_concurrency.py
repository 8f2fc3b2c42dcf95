"""Several processes writing one SQLite file at once never see "database is locked" (WAL, busy wait, BEGIN IMMEDIATE)."""

import multiprocessing

import pytest

from trainyard.store.settings import Settings

WRITERS, ROUNDS = 4, 40


def _writer(home: str, user_id: str, index: int) -> None:
    from trainyard.core.spec import parse_spec
    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.jobs import create_job, list_jobs
    from trainyard.store.runs import claim_job, heartbeat, record_epochs

    factory = make_sessionmaker(make_engine(Settings(home=home)))
    spec = parse_spec({"dataset": {"builtin": "xor"}, "model": {"layers": [{"type": "dense", "units": 1}]}})
    for r in range(ROUNDS):
        with session_scope(factory) as s:  # read, then write: the pattern that fails with deferred BEGIN
            list_jobs(session=s, owner=user_id, limit=5)
            job, _ = create_job(session=s, owner=user_id, spec=spec, idempotency_key=f"{index}-{r}")
        with session_scope(factory) as s:
            job = claim_job(session=s, job_id=job.id, worker=f"w{index}", lease_seconds=30)
        with session_scope(factory) as s:
            record_epochs(session=s, job_id=job.id, rows=[{"epoch": 1, "loss": 0.5}])
            heartbeat(session=s, job_id=job.id, attempt=job.attempts, lease_seconds=30, epoch=1)


@pytest.mark.timeout(120)
def test_processes_write_concurrently_without_locking_errors(sqlite_settings):
    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.jobs import list_jobs
    from trainyard.store.migrate import upgrade
    from trainyard.store.tokens import get_or_create_user

    upgrade(sqlite_settings)
    factory = make_sessionmaker(make_engine(sqlite_settings))
    with session_scope(factory) as s:
        user_id = get_or_create_user(session=s, name="alice").id
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(sqlite_settings.home), user_id, i)) for i in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(100)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    with session_scope(factory) as s:
        jobs, _ = list_jobs(session=s, owner=user_id, limit=500)
    assert len(jobs) == WRITERS * ROUNDS and all(j.status == "running" and j.epoch == 1 for j in jobs)
