"""A job as the worker and the reconciler see it: claim, heartbeat, epochs, checkpoints, finish, requeue.

A claim returns the attempt number; every later write of that attempt is conditional
on `status = 'running' AND attempts = attempt` and raises LeaseLost when the row moved
on (the reconciler gave the job to another attempt), so a slow or partitioned worker
can never overwrite a newer attempt's results.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.metrics import split_confusion_matrices
from store import matrices
from store.blobs import delete_blob_if_unreferenced, get_blob, put_blob
from store.errors import LeaseLost
from store.reuse import refresh_fingerprint
from store.models import (CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Artifact, HistoryChunk, Job, Worker,
                          pruned_error, utcnow)

WORKER_LOST = "worker_lost"


def claim_job(*, session: Session, job_id: str, worker: str, lease_seconds: float) -> Job | None:
    """Move the job queued → running for `worker` (one conditional UPDATE); None when it is not claimable.

    The returned job's `attempts` is this attempt's number, the fencing token of the
    calls below. A job with `cancel_requested` is never claimed.
    """
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == QUEUED, Job.cancel_requested.is_(False))
        .values(status=RUNNING, worker=worker, attempts=Job.attempts + 1,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=func.coalesce(Job.started_at, now))
        .execution_options(synchronize_session=False)
    ).rowcount
    return session.get(Job, job_id, populate_existing=True) if claimed == 1 else None


def _own(job_id: str, attempt: int):
    return (Job.id == job_id, Job.status == RUNNING, Job.attempts == attempt)


def heartbeat(*, session: Session, job_id: str, attempt: int, lease_seconds: float,
              epoch: int | None = None) -> bool:
    """Extend the lease (and record progress `epoch` when given); returns `cancel_requested`.

    Raises LeaseLost when this attempt no longer owns the job.
    """
    values: dict[str, Any] = {"lease_expires_at": utcnow() + timedelta(seconds=lease_seconds)}
    if epoch is not None:
        values["epoch"] = epoch
    if session.execute(update(Job).where(*_own(job_id, attempt)).values(**values)).rowcount != 1:
        raise LeaseLost(f"job {job_id} attempt {attempt} lost its lease")
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def record_epochs(*, session: Session, job_id: str, rows: list[dict]) -> None:
    """Store consecutive history rows as one chunk (call `heartbeat` with the last epoch in the same transaction)."""
    if rows:
        session.add(HistoryChunk(job_id=job_id, first_epoch=rows[0]["epoch"], last_epoch=rows[-1]["epoch"],
                                 rows=rows))


def truncate_history(*, session: Session, job_id: str, after_epoch: int) -> None:
    """Forget history rows past `after_epoch` (a retry resumes from its checkpoint and redoes them)."""
    session.execute(delete(HistoryChunk).where(HistoryChunk.job_id == job_id, HistoryChunk.first_epoch > after_epoch))
    for chunk in session.scalars(select(HistoryChunk).where(
            HistoryChunk.job_id == job_id, HistoryChunk.last_epoch > after_epoch)):
        chunk.rows = [row for row in chunk.rows if row["epoch"] <= after_epoch]
        chunk.last_epoch = after_epoch
    session.execute(update(Job).where(Job.id == job_id).values(epoch=after_epoch))


def save_checkpoint(*, session: Session, job_id: str, attempt: int, epoch: int, state: bytes) -> None:
    """Keep `state` as the job's latest checkpoint (after `epoch` epochs), replacing the previous one."""
    if session.execute(update(Job).where(*_own(job_id, attempt)).values(epoch=epoch)).rowcount != 1:
        raise LeaseLost(f"job {job_id} attempt {attempt} lost its lease")
    _put_artifact(session, job_id, "checkpoint", state, epoch=epoch)


def latest_checkpoint(*, session: Session, job_id: str) -> tuple[int, bytes] | None:
    """`(epoch, state)` of the job's last checkpoint, or None."""
    artifact = session.get(Artifact, (job_id, "checkpoint"))
    if artifact is None:
        return None
    return artifact.epoch, get_blob(session=session, sha256=artifact.blob_sha256)


def _put_artifact(session: Session, job_id: str, kind: str, data: bytes, *, epoch: int | None = None,
                  format: str | None = None) -> None:
    sha = put_blob(session=session, data=data)
    artifact = session.get(Artifact, (job_id, kind))
    old = None
    if artifact is None:
        session.add(Artifact(job_id=job_id, kind=kind, blob_sha256=sha, epoch=epoch, format=format,
                             size_bytes=len(data)))
    else:
        old = artifact.blob_sha256 if artifact.blob_sha256 != sha else None
        artifact.blob_sha256, artifact.epoch, artifact.format, artifact.size_bytes = sha, epoch, format, len(data)
        artifact.created_at = utcnow()
    session.flush()
    delete_blob_if_unreferenced(session=session, sha256=old)


def _drop_artifact(session: Session, job_id: str, kind: str) -> None:
    artifact = session.get(Artifact, (job_id, kind))
    if artifact is not None:
        sha = artifact.blob_sha256
        session.delete(artifact)
        session.flush()
        delete_blob_if_unreferenced(session=session, sha256=sha)


def finish_job(*, session: Session, job_id: str, attempt: int, status: str, metrics: dict | None = None,
               error: dict | None = None, model: bytes | None = None, model_format: str | None = None,
               versions: dict | None = None, stopped_early: bool = False, epoch: int | None = None) -> None:
    """Record the end of an attempt in one transaction: final status, metrics/error and the model file.

    `status` is succeeded, failed or cancelled. Confusion matrices in `metrics` are stored as
    artifacts of their own (`store.matrices`); the job row keeps the scalar metrics. The checkpoint
    is dropped (nothing will resume). Raises LeaseLost when this attempt no longer owns the job.
    """
    assert status in (SUCCEEDED, FAILED, CANCELLED)
    metrics, confusion = split_confusion_matrices(metrics) if metrics else (metrics, {})
    values: dict[str, Any] = {"status": status, "metrics": metrics, "error": error,
                              "versions": versions, "stopped_early": stopped_early, "finished_at": utcnow(),
                              "lease_expires_at": None}
    if epoch is not None:
        values["epoch"] = epoch
    if status == CANCELLED:  # stopped by its sweep's pruner (store.sweeps), not by its owner: say so
        pruned_after = session.scalar(select(Job.sweep_pruned_epoch).where(Job.id == job_id))
        if pruned_after is not None:
            values["error"] = pruned_error(pruned_after)
    if status == SUCCEEDED:  # from the versions it really ran with: only a submit in the same environment reuses it
        values.update(refresh_fingerprint(session=session, job_id=job_id, versions=versions))
    if session.execute(update(Job).where(*_own(job_id, attempt)).values(**values)).rowcount != 1:
        raise LeaseLost(f"job {job_id} attempt {attempt} lost its lease")
    if model is not None:
        _put_artifact(session, job_id, "model", model, format=model_format)
    for split, matrix in confusion.items():
        _put_artifact(session, job_id, matrices.kind(split), matrices.encode(matrix), format=matrices.FORMAT)
    _drop_artifact(session, job_id, "checkpoint")


def requeue_expired_jobs(*, session: Session, max_attempts: int) -> tuple[list[Job], list[Job]]:
    """Running jobs whose lease expired: back to queued, or failed `worker_lost` after `max_attempts`.

    A job whose cancellation was requested becomes cancelled instead. Returns
    `(requeued, failed)`; the caller commits, then publishes the requeued jobs.
    """
    now = utcnow()
    expired = list(session.scalars(select(Job).where(Job.status == RUNNING, Job.lease_expires_at < now)))
    requeued, failed = [], []
    for job in expired:
        if job.cancel_requested:
            values = {"status": CANCELLED, "finished_at": now, "error": job.cancel_error}
        elif job.attempts >= max_attempts:
            values = {"status": FAILED, "finished_at": now, "error": {
                "code": WORKER_LOST,
                "message": f"the worker running attempt {job.attempts} of {max_attempts} stopped reporting"}}
        else:
            values = {"status": QUEUED, "published_at": now}
        values.update(worker=None, lease_expires_at=None)
        moved = session.execute(update(Job).where(*_own(job.id, job.attempts), Job.lease_expires_at < now)
                                .values(**values)).rowcount
        if moved:
            (requeued if values["status"] == QUEUED else failed).append(job)
    for job in requeued + failed:
        session.refresh(job)
    return requeued, failed


def jobs_to_republish(*, session: Session, unclaimed_seconds: float, live_seconds: float) -> list[Job]:
    """Queued jobs sent over `unclaimed_seconds` ago on a queue where a live worker has a free slot.

    Their message was most likely lost (a broker restart, the file broker's read-is-remove).
    Marks them published now; the caller commits, then publishes them. Workers that are
    all busy explain the wait, so their queues are left alone (no duplicate messages pile up).
    """
    now = utcnow()
    live = list(session.scalars(select(Worker).where(Worker.last_seen >= now - timedelta(seconds=live_seconds))))
    running = dict(session.execute(select(Job.worker, func.count()).where(Job.status == RUNNING)
                                   .group_by(Job.worker)).all())
    idle_queues = {q for w in live if running.get(w.name, 0) < w.concurrency for q in w.queues}
    if not idle_queues:
        return []
    jobs = list(session.scalars(select(Job).where(
        Job.status == QUEUED, Job.device.in_(idle_queues),
        Job.published_at < now - timedelta(seconds=unclaimed_seconds)).order_by(Job.created_at)))
    for job in jobs:
        job.published_at = now
    return jobs
