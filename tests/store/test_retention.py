"""Retention and gc (store.retention, store.orphans, trainyard.store.gc) on SQLite and PostgreSQL: what is purged, what is
never removed (live jobs' checkpoints, datasets' blobs, pinned jobs, models another job shares), and the re-check
that keeps a blob referenced between the scan and the delete."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from trainyard.core.validate import validate_spec
from trainyard.store import orphans
from trainyard.store.blobs import put_blob, sha256_hex
from trainyard.store.datasets import create_dataset
from trainyard.store.db import session_scope
from trainyard.store.errors import NotFound, Purged
from trainyard.store.gc import describe, run_gc
from trainyard.store.jobs import create_job, get_history, get_job, get_model, get_confusion_matrix
from trainyard.store.models import Artifact, Blob, HistoryChunk, Job, utcnow
from trainyard.store.retention import set_pinned
from trainyard.store.runs import claim_job, finish_job, heartbeat, record_epochs, save_checkpoint
from trainyard.store.tokens import get_or_create_user

SPEC = {"dataset": {"builtin": "xor"}, "model": {"layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
        "training": {"epochs": 3, "seed": 1}}
OLD = timedelta(days=40)


def make_job(factory, owner: str, *, finish: str | None = "succeeded", model: bytes | None = None,
             checkpoint: bytes | None = None, age: timedelta = OLD, dataset_id: str | None = None) -> str:
    """A job as a worker leaves it: 3 epochs of history, a checkpoint, and when finished its model; `age` ago."""
    spec = {**SPEC, "dataset": {"id": dataset_id}} if dataset_id else SPEC
    with session_scope(factory) as s:
        job, _ = create_job(session=s, owner=owner, spec=validate_spec(spec))
        job_id = job.id
    with session_scope(factory) as s:
        attempt = claim_job(session=s, job_id=job_id, worker="w", lease_seconds=600).attempts
        record_epochs(session=s, job_id=job_id, rows=[{"epoch": e, "loss": 1.0 / e, "time": e} for e in (1, 2, 3)])
        heartbeat(session=s, job_id=job_id, attempt=attempt, lease_seconds=600, epoch=3)
        save_checkpoint(session=s, job_id=job_id, attempt=attempt, epoch=3,
                        state=checkpoint or f"checkpoint of {job_id}".encode())
    if finish:
        with session_scope(factory) as s:
            finish_job(session=s, job_id=job_id, attempt=attempt, status=finish,
                       metrics={"loss": 0.5, "accuracy": 0.75, "confusion_matrix": [[1, 1], [0, 2]]},
                       model=(model or f"model of {job_id}".encode()) if finish == "succeeded" else None,
                       model_format="npz", epoch=3)
    with session_scope(factory) as s:  # back-date it, and its blobs (older than the grace age)
        then = utcnow() - age
        s.execute(update(Job).where(Job.id == job_id).values(created_at=then, started_at=then,
                                                            finished_at=then if finish else None))
        s.execute(update(Blob).values(created_at=utcnow() - timedelta(days=400)))
    return job_id


def blob_shas(factory) -> set[str]:
    with session_scope(factory) as s:
        return set(s.scalars(select(Blob.sha256)))


def kinds(factory, job_id: str) -> set[str]:
    with session_scope(factory) as s:
        return set(s.scalars(select(Artifact.kind).where(Artifact.job_id == job_id)))


@pytest.fixture
def settings(migrated_settings):
    return migrated_settings.replace(retention_days=30.0, gc_grace_seconds=3600.0)


def test_gc_purges_old_finished_jobs_keeps_their_rows_and_reclaims_what_the_dry_run_said(settings, session_factory,
                                                                                          user_id):
    old = make_job(session_factory, user_id, model=b"m" * 5000)
    failed = make_job(session_factory, user_id, finish="failed")
    recent = make_job(session_factory, user_id, age=timedelta(days=2))
    model_sha = sha256_hex(b"m" * 5000)

    dry = run_gc(settings=settings, factory=session_factory, dry_run=True)
    assert [j.id for j in dry.jobs] == [old, failed] or [j.id for j in dry.jobs] == [failed, old]
    assert {j.id: j.removed for j in dry.jobs} == {old: ["history", "model"], failed: ["history"]}
    assert dry.blobs == 1 and dry.blob_bytes == 5000  # the model; both checkpoints went when the jobs finished
    assert model_sha in blob_shas(session_factory) and kinds(session_factory, old) >= {"model"}  # nothing changed

    done = run_gc(settings=settings, factory=session_factory)
    same = {"dry_run": True, "jobs": None, "cutoff": None}
    assert done.to_dict() | same == dry.to_dict() | same
    assert done.bytes == 5000 + dry.history_bytes and dry.history_bytes > 0
    assert model_sha not in blob_shas(session_factory)
    with session_scope(session_factory) as s:
        job = get_job(session=s, owner=user_id, job_id=old)
        assert (job.status, job.metrics, job.purged) == ("succeeded", {"loss": 0.5, "accuracy": 0.75},
                                                         ["history", "model"])
        assert job.purged_at is not None
        assert s.scalar(select(func.count()).select_from(HistoryChunk).where(HistoryChunk.job_id == old)) == 0
        with pytest.raises(Purged, match=f"the history of job {old} was removed"):
            get_history(session=s, owner=user_id, job_id=old)
        with pytest.raises(Purged, match="model"):
            get_model(session=s, owner=user_id, job_id=old)
        # the confusion matrices stay (small results, like the metrics)
        assert get_confusion_matrix(session=s, owner=user_id, job_id=old, split="train").tolist() == [[1, 1], [0, 2]]
        assert get_history(session=s, owner=user_id, job_id=recent)[0][-1]["epoch"] == 3
        assert get_model(session=s, owner=user_id, job_id=recent)[0] == f"model of {recent}".encode()
    again = run_gc(settings=settings, factory=session_factory)
    assert (again.jobs, again.blobs) == ([], 0)
    assert "purge 0 jobs" in describe(again) and "reclaimed 0 B in all" in describe(again)


def test_nothing_a_live_pinned_or_sharing_job_or_a_dataset_needs_is_removed(settings, session_factory, user_id):
    with session_scope(session_factory) as s:
        dataset = create_dataset(session=s, owner=user_id, name="d", format="csv", data=b"a,y\n0,0\n1,1\n",
                                 task="classification", n_samples=2, n_features=1, n_classes=2, target="y")
        dataset_id, dataset_sha = dataset.id, dataset.blob_sha256
    used_dataset = make_job(session_factory, user_id, dataset_id=dataset_id)
    running = make_job(session_factory, user_id, finish=None, checkpoint=b"live checkpoint")
    pinned = make_job(session_factory, user_id, model=b"pinned model")
    shared_old = make_job(session_factory, user_id, model=b"shared model")
    shared_new = make_job(session_factory, user_id, model=b"shared model", age=timedelta(days=1))
    with session_scope(session_factory) as s:
        set_pinned(session=s, owner=user_id, job_id=pinned, pinned=True)

    done = run_gc(settings=settings, factory=session_factory)
    assert {j.id for j in done.jobs} == {used_dataset, shared_old}
    assert done.blobs == 1  # only used_dataset's model; the shared model is still shared_new's
    shas = blob_shas(session_factory)
    assert {dataset_sha, sha256_hex(b"live checkpoint"), sha256_hex(b"pinned model"),
            sha256_hex(b"shared model")} <= shas
    assert kinds(session_factory, running) == {"checkpoint"}
    assert kinds(session_factory, pinned) >= {"model"}
    with session_scope(session_factory) as s:
        assert get_model(session=s, owner=user_id, job_id=shared_new)[0] == b"shared model"
        s.execute(update(Job).where(Job.id == shared_new).values(finished_at=utcnow() - OLD))
        set_pinned(session=s, owner=user_id, job_id=pinned, pinned=False)
    done = run_gc(settings=settings, factory=session_factory)
    assert {j.id for j in done.jobs} == {shared_new, pinned}
    assert done.blobs == 2 and sha256_hex(b"shared model") not in blob_shas(session_factory)
    assert dataset_sha in blob_shas(session_factory)


def test_retention_off_purges_no_job_but_orphans_past_the_grace_age_are_collected(settings, session_factory,
                                                                                  user_id):
    off = settings.replace(retention_days=0.0)
    job = make_job(session_factory, user_id)
    with session_scope(session_factory) as s:
        old_orphan = put_blob(session=s, data=b"o" * 300)
        young_orphan = put_blob(session=s, data=b"young")
        s.execute(update(Blob).where(Blob.sha256 == old_orphan).values(created_at=utcnow() - timedelta(hours=2)))
    dry = run_gc(settings=off, factory=session_factory, dry_run=True)
    assert (dry.cutoff, dry.jobs, dry.blobs, dry.blob_bytes) == (None, [], 1, 300)
    assert "retention is off" in describe(dry) and "would delete 1 unreferenced blob older" in describe(dry)
    done = run_gc(settings=off, factory=session_factory)
    assert (done.blobs, done.bytes) == (1, 300)
    assert old_orphan not in blob_shas(session_factory) and young_orphan in blob_shas(session_factory)
    assert kinds(session_factory, job) >= {"model"}
    assert run_gc(settings=off.replace(gc_grace_seconds=0.0), factory=session_factory).blobs == 1  # the young one


def test_a_blob_referenced_after_the_scan_is_not_deleted(settings, session_factory, user_id):
    job = make_job(session_factory, user_id, finish=None)
    with session_scope(session_factory) as s:
        sha = put_blob(session=s, data=b"late")
    cutoff = utcnow() + timedelta(seconds=1)
    with session_scope(session_factory) as s:
        scanned = [row.sha256 for row in s.execute(orphans.orphans(older_than=cutoff))]
    assert sha in scanned
    with session_scope(session_factory) as s:  # e.g. a worker's checkpoint that reuses these bytes, committed now
        s.execute(update(Artifact).where(Artifact.job_id == job).values(blob_sha256=sha))
    with session_scope(session_factory) as s:
        assert orphans.delete_if_orphan(session=s, sha256=sha, older_than=cutoff) is False
    assert sha in blob_shas(session_factory)


def test_a_pin_is_the_owners_and_is_kept_across_the_purge_check(settings, session_factory, user_id):
    job = make_job(session_factory, user_id)
    with session_scope(session_factory) as s:
        bob = get_or_create_user(session=s, name="bob").id
    with session_scope(session_factory) as s, pytest.raises(NotFound):
        set_pinned(session=s, owner=bob, job_id=job, pinned=True)
    with session_scope(session_factory) as s:
        assert set_pinned(session=s, owner=user_id, job_id=job, pinned=True).pinned is True
    assert run_gc(settings=settings, factory=session_factory).jobs == []
    assert kinds(session_factory, job) >= {"model"}


def test_trainyard_gc_says_what_it_removes_and_dry_run_changes_nothing(settings, session_factory, user_id):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    job = make_job(session_factory, user_id, model=b"x" * 2000)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(root)}

    def gc_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "trainyard.client.cli", "gc", *args], env=env, cwd=root,
                              capture_output=True, text=True, timeout=60)

    dry = gc_cli("--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout.splitlines()[-1])
    assert (report["dry_run"], report["jobs_purged"], report["blobs"], report["blob_bytes"]) == (True, 1, 1, 2000)
    assert report["jobs"][0]["id"] == job and report["jobs"][0]["removed"] == ["history", "model"]
    assert report["bytes"] == 2000 + report["history_bytes"] and report["history_epochs"] == 3
    assert kinds(session_factory, job) >= {"model"}
    text = gc_cli()
    assert text.returncode == 0, text.stderr
    assert "purge 1 job finished before" in text.stdout and f"job {job} (alice" in text.stdout
    assert "delete 1 unreferenced blob older" in text.stdout and "reclaimed 2.1 kB in all" in text.stdout
    assert "model" not in kinds(session_factory, job)
    bad = subprocess.run([sys.executable, "-m", "trainyard.client.cli", "gc"], env={**env, "TRAINYARD_RETENTION_DAYS": "-1"},
                         cwd=root, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "TRAINYARD_RETENTION_DAYS must be >= 0 and at most 36500" in bad.stderr


def test_postgres_a_blob_being_reused_is_not_deleted_under_the_writer(postgres_settings):
    """put_blob found the (old, unreferenced) bytes already stored and is about to refer to them: a gc delete in
    another transaction waits for it (FOR KEY SHARE) and then finds the reference, instead of deleting the blob
    under it (the writer's INSERT would then fail on the foreign key)."""
    import threading

    from sqlalchemy import text

    from trainyard.store.db import make_engine, make_sessionmaker
    from trainyard.store.migrate import upgrade

    upgrade(postgres_settings)
    engine = make_engine(postgres_settings)
    factory = make_sessionmaker(engine)
    try:
        with session_scope(factory) as s:
            owner = get_or_create_user(session=s, name="alice").id
        job = make_job(factory, owner, finish=None)
        with session_scope(factory) as s:
            sha = put_blob(session=s, data=b"bytes stored before")
            s.execute(update(Blob).values(created_at=utcnow() - timedelta(days=1)))
        cutoff = utcnow()
        writer = factory()
        try:
            assert put_blob(session=writer, data=b"bytes stored before") == sha  # found: no insert
            writer_pid = writer.scalar(text("SELECT pg_backend_pid()"))
            result: dict = {}

            def collect() -> None:
                result["done"] = orphans.collect_orphans(factory=factory, read_factory=factory, older_than=cutoff)

            collector = threading.Thread(target=collect)
            collector.start()
            with engine.connect() as watch:  # until gc waits for the writer's lock (or, unlocked, has finished)
                while collector.is_alive() and not watch.scalar(text(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> :me"), {"me": writer_pid}):
                    collector.join(0.05)
            writer.execute(update(Artifact).where(Artifact.job_id == job).values(blob_sha256=sha))
            writer.commit()  # with the blob deleted under it, this UPDATE would fail on the foreign key
        finally:
            writer.close()
        collector.join(30)
        assert result["done"].blobs == 0
        with session_scope(factory) as s:
            assert s.get(Blob, sha) is not None
            assert s.scalar(select(Artifact.blob_sha256).where(Artifact.job_id == job)) == sha
    finally:
        engine.dispose()


def test_a_job_failed_by_the_reconciler_loses_the_checkpoint_it_kept(settings, session_factory, user_id):
    from trainyard.store.runs import requeue_expired_jobs

    job = make_job(session_factory, user_id, finish=None, checkpoint=b"c" * 700)
    with session_scope(session_factory) as s:  # its worker vanished on the last attempt: failed, worker_lost
        s.execute(update(Job).where(Job.id == job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        assert [j.id for j in requeue_expired_jobs(session=s, max_attempts=1)[1]] == [job]
        s.execute(update(Job).where(Job.id == job).values(finished_at=utcnow() - OLD))
    assert kinds(session_factory, job) == {"checkpoint"}  # nothing resumes a failed job, yet it stayed
    done = run_gc(settings=settings, factory=session_factory)
    assert [(j.id, j.removed) for j in done.jobs] == [(job, ["history", "checkpoint"])]
    assert (done.blobs, done.blob_bytes) == (1, 700) and kinds(session_factory, job) == set()
    with session_scope(session_factory) as s:
        assert get_job(session=s, owner=user_id, job_id=job).error["code"] == "worker_lost"


def test_gc_pages_through_many_jobs_and_blobs(settings, session_factory, user_id, monkeypatch):
    import trainyard.store.gc

    monkeypatch.setattr(trainyard.store.gc, "PAGE", 2)
    monkeypatch.setattr(trainyard.store.gc, "JOBS_PER_WRITE", 2)
    monkeypatch.setattr(orphans, "BATCH", 2)
    jobs = [make_job(session_factory, user_id, model=f"model {i}".encode() * 10) for i in range(5)]
    with session_scope(session_factory) as s:  # the same finished_at for all: the (finished_at, id) key decides
        s.execute(update(Job).values(finished_at=utcnow() - OLD))
    dry = run_gc(settings=settings, factory=session_factory, dry_run=True)
    assert sorted(j.id for j in dry.jobs) == sorted(jobs) and dry.blobs == 5
    done = run_gc(settings=settings, factory=session_factory)
    assert sorted(j.id for j in done.jobs) == sorted(jobs) and (done.blobs, done.blob_bytes) == (5, dry.blob_bytes)
    assert "purge 5 jobs" in describe(done)
    with session_scope(session_factory) as s:  # what is left: the confusion matrix they all share
        kept = set(s.scalars(select(Artifact.blob_sha256).where(Artifact.kind == "confusion_train")))
    assert blob_shas(session_factory) == kept and len(kept) == 1
