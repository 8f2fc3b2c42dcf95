"""trainyard.store.jobs and store.runs on SQLite and PostgreSQL: the job lifecycle as rows."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from trainyard.core.spec import parse_spec
from trainyard.store.blobs import sha256_hex
from trainyard.store.db import session_scope
from trainyard.store.errors import (BadCursor, BlobCorrupt, DatasetNotFound, JobFinished, JobNotFinished, LeaseLost,
                                    ModelNotAvailable, NotFound)
from trainyard.store.jobs import (count_queued_jobs, create_job, delete_job, get_history, get_job, get_model, list_jobs,
                                  pending_reason, queue_position, request_cancel)
from trainyard.store.models import Blob, HistoryChunk, Job, Worker, utcnow
from trainyard.store.runs import (claim_job, finish_job, heartbeat, jobs_to_republish, latest_checkpoint, record_epochs,
                                  requeue_expired_jobs, save_checkpoint, truncate_history)
from trainyard.store.tokens import get_or_create_user
from trainyard.store.workers import list_live_workers, prune_workers, register_worker

XOR = {"name": "xor", "dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 2, "activation": "relu"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 5, "seed": 1}}


def spec(**changes):
    return parse_spec({**XOR, **changes})


def new_job(factory, owner, **changes) -> str:
    with session_scope(factory) as s:
        job, created = create_job(session=s, owner=owner, spec=spec(**changes))
        assert created
        return job.id


def claim(factory, job_id, worker="w1", lease=30.0):
    with session_scope(factory) as s:
        job = claim_job(session=s, job_id=job_id, worker=worker, lease_seconds=lease)
        return None if job is None else job.attempts


def test_create_stores_the_normalised_spec_and_progress(session_factory, user_id):
    job_id = new_job(session_factory, user_id)
    with session_scope(session_factory) as s:
        job = get_job(session=s, owner=user_id, job_id=job_id)
        assert (job.status, job.name, job.backend, job.device, job.attempts) == ("queued", "xor", "numpy", "cpu", 0)
        assert job.progress == {"epoch": 0, "epochs": 5}
        assert job.spec["training"]["optimizer"]["name"] == "rmsprop"  # filled default
        assert job.created_at.tzinfo is not None
        assert queue_position(session=s, job=job) == 1
        assert count_queued_jobs(session=s, owner=user_id) == 1


def test_another_users_job_is_not_found(session_factory, user_id):
    job_id = new_job(session_factory, user_id)
    with session_scope(session_factory) as s:
        bob = get_or_create_user(session=s, name="bob").id
        with pytest.raises(NotFound):
            get_job(session=s, owner=bob, job_id=job_id)
        with pytest.raises(NotFound):
            request_cancel(session=s, owner=bob, job_id=job_id)
        assert list_jobs(session=s, owner=bob) == ([], None)


def test_idempotency_key_returns_the_first_job(session_factory, user_id):
    with session_scope(session_factory) as s:
        first, created = create_job(session=s, owner=user_id, spec=spec(), idempotency_key="k1")
    with session_scope(session_factory) as s:
        again, created_again = create_job(session=s, owner=user_id, spec=spec(name="other"), idempotency_key="k1")
        other, created_other = create_job(session=s, owner=user_id, spec=spec(), idempotency_key="k2")
    assert created and not created_again and created_other
    assert again.id == first.id and again.name == "xor" and other.id != first.id


def test_unknown_dataset_id_is_refused(session_factory, user_id):
    with session_scope(session_factory) as s, pytest.raises(DatasetNotFound):
        create_job(session=s, owner=user_id, spec=spec(dataset={"id": "nope"}))


def test_list_pages_newest_first_with_filters(session_factory, user_id):
    ids = [new_job(session_factory, user_id, name=f"j{i % 2}") for i in range(7)]
    seen, cursor = [], None
    with session_scope(session_factory) as s:
        while True:
            page, cursor = list_jobs(session=s, owner=user_id, limit=3, cursor=cursor)
            seen += [j.id for j in page]
            if cursor is None:
                break
        assert seen == ids[::-1]
        assert [j.id for j in list_jobs(session=s, owner=user_id, name="j1")[0]] == ids[1::2][::-1]
        assert list_jobs(session=s, owner=user_id, status="running")[0] == []
        assert len(list_jobs(session=s, owner=user_id, status=["queued", "running"], backend="numpy")[0]) == 7
        with pytest.raises(BadCursor):
            list_jobs(session=s, owner=user_id, cursor="garbage!")


def test_claim_is_exclusive_and_fences_later_writes(session_factory, user_id):
    job_id = new_job(session_factory, user_id)
    assert claim(session_factory, job_id, "w1") == 1
    assert claim(session_factory, job_id, "w2") is None  # a second delivery finds it claimed
    with session_scope(session_factory) as s:
        assert heartbeat(session=s, job_id=job_id, attempt=1, lease_seconds=30) is False
        with pytest.raises(LeaseLost):
            heartbeat(session=s, job_id=job_id, attempt=2, lease_seconds=30)


def test_concurrent_claimers_one_wins(session_factory, user_id):
    job_ids = [new_job(session_factory, user_id) for _ in range(5)]
    wins: list[tuple[str, str]] = []
    barrier = threading.Barrier(4)

    def claimer(name):
        barrier.wait()
        for job_id in job_ids:
            if claim(session_factory, job_id, name):
                wins.append((job_id, name))

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(j for j, _ in wins) == sorted(job_ids)  # every job claimed exactly once


def test_history_is_stored_in_chunks_and_read_back_in_order(session_factory, user_id):
    job_id = new_job(session_factory, user_id, training={"epochs": 10_000, "seed": 1})
    attempt = claim(session_factory, job_id)
    rows = [{"epoch": e, "loss": 1 / e, "accuracy": 0.5, "time": e * 1e-4} for e in range(1, 10_001)]
    rows[4]["loss"] = float("nan")
    for start in range(0, 10_000, 2500):
        with session_scope(session_factory) as s:
            batch = rows[start:start + 2500]
            record_epochs(session=s, job_id=job_id, rows=batch)
            heartbeat(session=s, job_id=job_id, attempt=attempt, lease_seconds=30, epoch=batch[-1]["epoch"])
    with session_scope(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(HistoryChunk)) == 4
        history, next_since, more = get_history(session=s, owner=user_id, job_id=job_id, limit=10_000)
        assert [r["epoch"] for r in history] == list(range(1, 10_001)) and (next_since, more) == (10_000, False)
        assert history[4]["loss"] is None  # non-finite numbers are stored as null
        assert [r["epoch"] for r in get_history(session=s, owner=user_id, job_id=job_id, since=9998)[0]] == [9999,
                                                                                                           10000]
        page, next_since, more = get_history(session=s, owner=user_id, job_id=job_id, since=2400, limit=200)
        assert [r["epoch"] for r in page] == list(range(2401, 2601)) and (next_since, more) == (2600, True)
        assert get_job(session=s, owner=user_id, job_id=job_id).progress == {"epoch": 10_000, "epochs": 10_000}


def test_checkpoint_resume_truncates_history(session_factory, user_id):
    job_id = new_job(session_factory, user_id)
    attempt = claim(session_factory, job_id)
    with session_scope(session_factory) as s:
        record_epochs(session=s, job_id=job_id, rows=[{"epoch": e, "loss": 1.0} for e in (1, 2, 3)])
        save_checkpoint(session=s, job_id=job_id, attempt=attempt, epoch=2, state=b"state-2")
        save_checkpoint(session=s, job_id=job_id, attempt=attempt, epoch=3, state=b"state-3")
    with session_scope(session_factory) as s:
        assert latest_checkpoint(session=s, job_id=job_id) == (3, b"state-3")
        assert s.get(Blob, sha256_hex(b"state-2")) is None  # the replaced checkpoint's blob is gone
        truncate_history(session=s, job_id=job_id, after_epoch=2)
    with session_scope(session_factory) as s:
        assert [r["epoch"] for r in get_history(session=s, owner=user_id, job_id=job_id)[0]] == [1, 2]
        assert get_job(session=s, owner=user_id, job_id=job_id).epoch == 2


def test_finish_stores_model_and_status_together_then_delete_removes_blobs(session_factory, user_id):
    job_id = new_job(session_factory, user_id)
    attempt = claim(session_factory, job_id)
    with session_scope(session_factory) as s:
        save_checkpoint(session=s, job_id=job_id, attempt=attempt, epoch=1, state=b"ckpt")
        with pytest.raises(ModelNotAvailable):
            get_model(session=s, owner=user_id, job_id=job_id)
        finish_job(session=s, job_id=job_id, attempt=attempt, status="succeeded", metrics={"loss": 0.1},
                   model=b"model-bytes", model_format="npz", versions={"numpy": "2"})
    with session_scope(session_factory) as s:
        job = get_job(session=s, owner=user_id, job_id=job_id)
        assert (job.status, job.metrics, job.finished_at is not None) == ("succeeded", {"loss": 0.1}, True)
        assert get_model(session=s, owner=user_id, job_id=job_id) == (b"model-bytes", "npz")
        assert latest_checkpoint(session=s, job_id=job_id) is None
        with pytest.raises(LeaseLost):  # the attempt is over
            finish_job(session=s, job_id=job_id, attempt=attempt, status="failed")
    with session_scope(session_factory) as s:
        delete_job(session=s, owner=user_id, job_id=job_id)
    with session_scope(session_factory) as s:
        assert s.scalar(select(func.count()).select_from(Blob)) == 0
        with pytest.raises(NotFound):
            get_job(session=s, owner=user_id, job_id=job_id)


def test_shared_model_blob_survives_deleting_one_job(session_factory, user_id):
    jobs = [new_job(session_factory, user_id) for _ in range(2)]
    for job_id in jobs:
        attempt = claim(session_factory, job_id)
        with session_scope(session_factory) as s:
            finish_job(session=s, job_id=job_id, attempt=attempt, status="succeeded", model=b"same", model_format="npz")
    with session_scope(session_factory) as s:
        delete_job(session=s, owner=user_id, job_id=jobs[0])
    with session_scope(session_factory) as s:
        assert get_model(session=s, owner=user_id, job_id=jobs[1]) == (b"same", "npz")


def test_corrupt_blob_is_never_served(session_factory, user_id):
    job_id = new_job(session_factory, user_id)
    attempt = claim(session_factory, job_id)
    with session_scope(session_factory) as s:
        finish_job(session=s, job_id=job_id, attempt=attempt, status="succeeded", model=b"good", model_format="npz")
    with session_scope(session_factory) as s:
        s.execute(update(Blob).values(data=b"evil"))
    with session_scope(session_factory) as s, pytest.raises(BlobCorrupt):
        get_model(session=s, owner=user_id, job_id=job_id)


def test_cancel_queued_at_once_running_by_flag_finished_conflicts(session_factory, user_id):
    queued, running = new_job(session_factory, user_id), new_job(session_factory, user_id)
    attempt = claim(session_factory, running)
    with session_scope(session_factory) as s:
        job = request_cancel(session=s, owner=user_id, job_id=queued)
        assert (job.status, job.error["code"], job.finished_at is not None) == ("cancelled", "cancelled", True)
        job = request_cancel(session=s, owner=user_id, job_id=running)
        assert (job.status, job.cancel_requested) == ("running", True)
        assert heartbeat(session=s, job_id=running, attempt=attempt, lease_seconds=30) is True
        with pytest.raises(JobFinished):
            request_cancel(session=s, owner=user_id, job_id=queued)
        with pytest.raises(JobNotFinished):
            delete_job(session=s, owner=user_id, job_id=running)
    assert claim(session_factory, queued) is None  # a cancelled job's message is dropped


def test_expired_leases_requeue_then_fail_with_worker_lost(session_factory, user_id):
    job_id = new_job(session_factory, user_id)
    for attempt in (1, 2, 3):
        assert claim(session_factory, job_id, lease=-1) == attempt  # already expired
        with session_scope(session_factory) as s:
            requeued, failed = requeue_expired_jobs(session=s, max_attempts=3)
            ids = [j.id for j in (requeued if attempt < 3 else failed)]
            assert ids == [job_id]
    with session_scope(session_factory) as s:
        job = get_job(session=s, owner=user_id, job_id=job_id)
        assert (job.status, job.error["code"], job.attempts) == ("failed", "worker_lost", 3)


def test_live_workers_pending_reason_and_republish(session_factory, user_id):
    cpu_job, gpu_job = new_job(session_factory, user_id), new_job(session_factory, user_id, device="gpu")
    with session_scope(session_factory) as s:
        s.execute(update(Job).values(published_at=utcnow() - timedelta(seconds=60)))
        job = get_job(session=s, owner=user_id, job_id=gpu_job)
        assert pending_reason(session=s, job=job, live_seconds=10) == "no live worker listens on queue gpu"
        assert jobs_to_republish(session=s, unclaimed_seconds=30, live_seconds=10) == []  # nobody listens
        register_worker(session=s, name="w1", queues=["cpu"], device="cpu", concurrency=1, hostname="h", pid=1)
    with session_scope(session_factory) as s:
        assert [j.id for j in jobs_to_republish(session=s, unclaimed_seconds=30, live_seconds=10)] == [cpu_job]
        assert jobs_to_republish(session=s, unclaimed_seconds=30, live_seconds=10) == []  # just re-sent
    attempt = claim(session_factory, cpu_job, worker="w1")
    with session_scope(session_factory) as s:
        (worker,) = list_live_workers(session=s, live_seconds=10)
        assert (worker.name, worker.queues, worker.current_jobs) == ("w1", ["cpu"], [cpu_job])
        assert attempt == 1
        assert list_live_workers(session=s, live_seconds=-1) == []


def test_workers_not_seen_for_long_are_pruned(session_factory):
    with session_scope(session_factory) as s:
        register_worker(session=s, name="old", queues=["cpu"], device="cpu", concurrency=1, hostname="h", pid=1)
        register_worker(session=s, name="new", queues=["gpu"], device="gpu", concurrency=1, hostname="h", pid=2)
        s.execute(update(Worker).where(Worker.name == "old").values(last_seen=utcnow() - timedelta(days=2)))
    with session_scope(session_factory) as s:
        assert prune_workers(session=s, unseen_seconds=86400) == 1
        assert [w.name for w in list_live_workers(session=s, live_seconds=60)] == ["new"]
