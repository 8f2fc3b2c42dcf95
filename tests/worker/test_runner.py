"""trainyard.worker.runner.run_job in-process: double delivery, timeouts, internal errors, lost leases, stored bad specs."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from trainyard.core.spec import parse_spec
from trainyard.store.datasets import create_dataset
from trainyard.store.db import session_scope
from trainyard.store.jobs import create_job, get_history, get_job
from trainyard.store.models import Job
from trainyard.store.runs import record_epochs
from trainyard.worker.runner import run_job

pytestmark = pytest.mark.timeout(60)

XOR = {"dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 2, "activation": "relu"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 20, "batch_size": 2, "seed": 1}}


def submit(factory, owner, **training) -> str:
    with session_scope(factory) as session:
        job, _ = create_job(session=session, owner=owner,
                            spec=parse_spec({**XOR, "training": {**XOR["training"], **training}}))
        return job.id


def job_row(factory, owner, job_id):
    with session_scope(factory) as session:
        return get_job(session=session, owner=owner, job_id=job_id)


def test_a_second_delivery_does_nothing(migrated_settings, session_factory, user_id):
    job_id = submit(session_factory, user_id)
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "succeeded"
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "skipped"
    job = job_row(session_factory, user_id, job_id)
    assert (job.status, job.attempts, job.epoch) == ("succeeded", 1, 20)
    with session_scope(session_factory) as session:
        assert len(get_history(session=session, owner=user_id, job_id=job_id)[0]) == 20


def test_wall_clock_limit_fails_with_timeout(migrated_settings, session_factory, user_id):
    job_id = submit(session_factory, user_id, epochs=1_000_000)
    settings = migrated_settings.replace(job_timeout_seconds=0.5)
    started = time.monotonic()
    assert run_job(settings=settings, factory=session_factory, job_id=job_id, worker="w") == "failed"
    assert time.monotonic() - started < 5
    job = job_row(session_factory, user_id, job_id)
    assert job.error["code"] == "timeout" and "0.5 s" in job.error["message"] and job.epoch > 0


def test_unexpected_exception_is_internal(migrated_settings, session_factory, user_id, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("trainyard.worker.runner.train_job", boom)
    job_id = submit(session_factory, user_id)
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "failed"
    assert job_row(session_factory, user_id, job_id).error == {"code": "internal", "message": "RuntimeError: boom"}


def test_a_stored_spec_that_no_longer_validates_is_invalid_spec(migrated_settings, session_factory, user_id):
    job_id = submit(session_factory, user_id)
    with session_scope(session_factory) as session:
        job = session.get(Job, job_id)
        spec = dict(job.spec, model={"layers": [{"type": "dense", "units": 1, "activation": "bogus"}]})
        session.execute(update(Job).where(Job.id == job_id).values(spec=spec))
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "failed"
    error = job_row(session_factory, user_id, job_id).error
    assert error["code"] == "invalid_spec" and error["errors"][0]["loc"] == "model.layers[0].activation"


def test_a_lost_lease_stops_training_without_writing(migrated_settings, session_factory, user_id, monkeypatch):
    job_id = submit(session_factory, user_id)

    def train_until_stopped(spec, callbacks, **kwargs):
        with session_scope(session_factory) as session:  # the reconciler gave the job to attempt 2
            session.execute(update(Job).where(Job.id == job_id).values(attempts=2, worker="other"))
        while True:
            callbacks.check()
            time.sleep(0.01)

    monkeypatch.setattr("trainyard.worker.runner.train_job", train_until_stopped)
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "lost"
    job = job_row(session_factory, user_id, job_id)
    assert (job.status, job.worker, job.attempts) == ("running", "other", 2)


def test_a_call_stuck_past_the_limit_is_failed_and_the_process_stopped(migrated_settings, session_factory, user_id,
                                                                       monkeypatch):
    settings = migrated_settings.replace(job_timeout_seconds=0.2, lease_seconds=0.6, heartbeat_seconds=0.1)
    stopped = threading.Event()
    monkeypatch.setattr("trainyard.worker.runner.train_job", lambda *a, **k: stopped.wait(10))  # never calls check()
    job_id = submit(session_factory, user_id)
    assert run_job(settings=settings, factory=session_factory, job_id=job_id, worker="w",
                   on_hard_timeout=stopped.set) == "lost"  # in a worker, the process would be gone by now
    assert stopped.is_set()
    assert job_row(session_factory, user_id, job_id).error["code"] == "timeout"


def test_a_superseded_attempt_whose_history_clashes_learns_it_lost_its_lease(migrated_settings, session_factory,
                                                                               user_id, monkeypatch):
    """The fenced UPDATE runs before the history INSERT: a superseded attempt gets LeaseLost ("lost"), not an
    IntegrityError from the new attempt's rows for the same epochs (which read as a database error to retry)."""
    from trainyard.worker import runner

    job_id = submit(session_factory, user_id)
    train = runner.train_job

    def trained_then_superseded(spec, callbacks, **kwargs):
        result = train(spec, callbacks, **kwargs)  # its 20 epochs are still buffered (heartbeat 60 s)
        with session_scope(session_factory) as session:  # meanwhile attempt 2 took the job and wrote epochs 1-20
            session.execute(update(Job).where(Job.id == job_id).values(attempts=2, worker="other"))
            record_epochs(session=session, job_id=job_id, rows=[{"epoch": e, "loss": 0.5} for e in range(1, 21)])
        return result

    monkeypatch.setattr("trainyard.worker.runner.train_job", trained_then_superseded)
    settings = migrated_settings.replace(heartbeat_seconds=60)
    assert run_job(settings=settings, factory=session_factory, job_id=job_id, worker="w") == "lost"
    job = job_row(session_factory, user_id, job_id)
    assert (job.status, job.worker, job.attempts) == ("running", "other", 2)


def test_a_database_error_reading_the_data_leaves_the_job_to_its_lease(migrated_settings, session_factory, user_id,
                                                                        monkeypatch):
    """Not the job's fault, so no verdict on it: before, the job failed `internal` for good."""
    job_id = submit(session_factory, user_id)
    with session_scope(session_factory) as session:
        dataset = create_dataset(session=session, owner=user_id, name="d", format="csv", data=b"x,y\n0,1\n",
                                 task="classification", n_samples=1, n_features=1)
        session.execute(update(Job).where(Job.id == job_id).values(dataset_id=dataset.id))

    def unavailable(**kwargs):
        raise OperationalError("SELECT datasets", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr("trainyard.worker.runner.load_upload", unavailable)
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "lost"
    job = job_row(session_factory, user_id, job_id)
    assert (job.status, job.attempts, job.error) == ("running", 1, None)  # its lease expires; the reconciler requeues


def test_a_claim_that_meets_a_dead_connection_is_tried_once_more(migrated_settings, session_factory, user_id,
                                                                 monkeypatch):
    """Pooled connections used a moment ago are not pinged (store.pgtimeouts): a claim on one the server dropped
    fails once, and the worker claims again on the renewed pool instead of dropping the job's message."""
    from trainyard.worker import runner

    job_id, claim, calls = submit(session_factory, user_id), runner.claim_job, []

    def first_fails(**kwargs):
        calls.append(kwargs["job_id"])
        if len(calls) == 1:
            raise OperationalError("UPDATE jobs", {}, Exception("server closed the connection unexpectedly"))
        return claim(**kwargs)

    monkeypatch.setattr("trainyard.worker.runner.claim_job", first_fails)
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "succeeded"
    assert calls == [job_id, job_id]
