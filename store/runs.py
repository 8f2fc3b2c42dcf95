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

from trainyard.core.metrics import split_confusion_matrices
from trainyard.store import fairshare, matrices
from trainyard.store.blobs import delete_blob_if_unreferenced, get_blob, put_blob
from trainyard.store.errors import LeaseLost
from trainyard.store.reuse import refresh_fingerprint
from trainyard.store.models import (CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Artifact, HistoryChunk, Job, Worker,
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


def claim_next_job(*, session: Session, device: str, worker: str, lease_seconds: float,
                   max_running_per_user: int = 0) -> Job | None:
    """Claim for `worker` the job the fair-share policy picks on queue `device` (store.fairshare); None when no
    queued job there may start (none queued, or only jobs of users at `max_running_per_user`).

    A user whose jobs are all being claimed by other workers at this moment is passed over for the next one.
    With a quota, each user is tried in a savepoint that holds the user's lock (fairshare.under_quota): passing
    a user over rolls it back, which releases that lock, so a claimer waits for a user's lock holding no other
    and two claimers can never wait for each other.
    """
    passed: list[str] = []
    while True:
        owner = fairshare.next_owner(session=session, device=device, max_running_per_user=max_running_per_user,
                                     passed=passed)
        if owner is None:
            return None
        passed.append(owner)
        savepoint = session.begin_nested() if max_running_per_user else None
        job = None
        if not max_running_per_user or fairshare.under_quota(session=session, owner=owner,
                                                             max_running_per_user=max_running_per_user):
            job_id = fairshare.next_job(session=session, device=device, owner=owner)
            if job_id is not None:
                job = claim_job(session=session, job_id=job_id, worker=worker, lease_seconds=lease_seconds)
        if savepoint is not None:
            (savepoint.commit if job is not None else savepoint.rollback)()
        if job is not None:
            return job


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


def jobs_to_republish(*, session: Session, unclaimed_seconds: float, live_seconds: float,
                      max_running_per_user: int = 0) -> list[Job]:
    """Queued jobs sent over `unclaimed_seconds` ago on a queue where a live worker has a free slot, at most as
    many per queue as it has free slots, oldest first.

    Their message was most likely lost (a broker restart, the file broker's read-is-remove).
    Marks them published now; the caller commits, then publishes them. A worker that takes a
    message claims the job the fair-share policy picks, so one message per free slot is enough;
    the rest are sent on later passes if slots are still free. Workers that are all busy explain
    the wait, and so does a quota: jobs of users at `max_running_per_user` are not sent.
    """
    now = utcnow()
    live = list(session.scalars(select(Worker).where(Worker.last_seen >= now - timedelta(seconds=live_seconds))))
    running = dict(session.execute(select(Job.worker, func.count()).where(Job.status == RUNNING)
                                   .group_by(Job.worker)).all())
    free: dict[str, int] = {}
    for w in live:
        for queue in w.queues:
            free[queue] = free.get(queue, 0) + max(0, w.concurrency - running.get(w.name, 0))
    at_quota = list(session.scalars(select(Job.owner_id).where(Job.status == RUNNING).group_by(Job.owner_id)
                                    .having(func.count() >= max_running_per_user))) if max_running_per_user else []
    jobs: list[Job] = []
    for queue, slots in sorted(free.items()):
        if slots:
            query = select(Job).where(Job.status == QUEUED, Job.device == queue,
                                      Job.published_at < now - timedelta(seconds=unclaimed_seconds))
            if at_quota:
                query = query.where(Job.owner_id.not_in(at_quota))
            jobs += session.scalars(query.order_by(Job.created_at, Job.id).limit(slots))
    for job in jobs:
        job.published_at = now
    return jobs
