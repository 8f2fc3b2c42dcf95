"""A job as the worker and the reconciler see it: claim, heartbeat, epochs, checkpoints, finish, requeue.

A claim returns the attempt number; every later write of that attempt is conditional
on `status = 'running' AND attempts = attempt` and raises LeaseLost when the row moved
on (the reconciler gave the job to another attempt), so a slow or partitioned worker
can never overwrite a newer attempt's results.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from trainyard.core.metrics import split_confusion_matrices
from trainyard.store import fairshare, matrices
from trainyard.store.blobs import delete_blob_if_unreferenced, get_blob, put_blob, put_blobs
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
    return _claim(session, _claim_statement("id"), {"claim_id": job_id}, worker=worker, lease_seconds=lease_seconds)


@functools.cache
def _claim_statement(picks: str) -> Select:
    """One UPDATE … RETURNING that claims a job and gives back its row, built once per kind (building the
    fair-share subqueries costs more than running them). `picks` the job: "id" (parameter `claim_id`), "owner"
    (the next job of `claim_owner` on the fairshare.DEVICE parameter's queue) or "fair share" (the next job on that
    queue, of the owner fairshare.next_owner_query picks with its parameters).

    Executed as an ORM SELECT from the statement, not as an ORM UPDATE: the ORM's bulk-UPDATE path copies the
    statement at every execution and so computes its (large) cache key again, which cost every claim ~0.2 ms."""
    columns = Job.__table__.c
    if picks == "id":
        which = bindparam("claim_id", type_=columns.id.type)
    else:
        owner = (bindparam("claim_owner", type_=columns.owner_id.type) if picks == "owner"
                 else fairshare.next_owner_query().scalar_subquery())
        which = fairshare.next_job_query(device=fairshare.device_parameter(), owner=owner).scalar_subquery()
    claim = (update(Job)
             .where(Job.id == which, Job.status == QUEUED, Job.cancel_requested.is_(False))
             .values(status=RUNNING, worker=bindparam("claim_worker", type_=columns.worker.type),
                     attempts=Job.attempts + 1,
                     lease_expires_at=bindparam("claim_lease", type_=columns.lease_expires_at.type),
                     started_at=func.coalesce(Job.started_at, bindparam("claim_now", type_=columns.started_at.type)))
             .returning(Job))
    return select(Job).from_statement(claim).execution_options(populate_existing=True)


def _claim(session: Session, statement: Select, params: dict, *, worker: str, lease_seconds: float) -> Job | None:
    now = utcnow()
    params = {**params, "claim_now": now, "claim_lease": now + timedelta(seconds=lease_seconds), "claim_worker": worker}
    return session.scalars(statement, params).one_or_none()


def claim_next_job(*, session: Session, device: str, worker: str, lease_seconds: float,
                   max_running_per_user: int = 0) -> Job | None:
    """Claim for `worker` the job the fair-share policy picks on queue `device` (store.fairshare); None when no
    queued job there may start (none queued, or only jobs of users at `max_running_per_user`).

    Without a quota, the owner, their job and the claim are first tried as one statement. When that claims
    nothing (the queue is empty, or the owner it picked has all their queued jobs locked by other claimers),
    the claim goes owner by owner: `next_owner`, then a claim of that owner's next job; only an owner whose own
    claim came back empty is passed over for the next one. The statement alone cannot say which owner it
    tried, and asking `next_owner` afterwards reads a newer snapshot, which may name an owner never tried.
    With a quota, each owner is tried in a savepoint that holds the user's lock (fairshare.under_quota): passing
    a user over rolls it back, which releases that lock, so a claimer waits for a user's lock holding no other
    and two claimers can never wait for each other.
    """
    if not max_running_per_user:
        params = fairshare.next_owner_params(device=device)
        job = _claim(session, _claim_statement("fair share"), params, worker=worker, lease_seconds=lease_seconds)
        if job is not None:
            return job
    passed: list[str] = []
    while True:
        owner = fairshare.next_owner(session=session, device=device, max_running_per_user=max_running_per_user,
                                     passed=passed)
        if owner is None:
            return None
        job = _claim_owners_job(session, device, owner, worker=worker, lease_seconds=lease_seconds,
                                max_running_per_user=max_running_per_user)
        if job is not None:
            return job
        passed.append(owner)


def _claim_owners_job(session: Session, device: str, owner: str, *, worker: str, lease_seconds: float,
                      max_running_per_user: int) -> Job | None:
    """Claim `owner`'s next job on `device` (None when all are locked by other claimers); with a quota, in a
    savepoint that holds the user's lock and is rolled back (releasing it) when nothing is claimed."""
    params = {fairshare.DEVICE: device, "claim_owner": owner}
    if not max_running_per_user:
        return _claim(session, _claim_statement("owner"), params, worker=worker, lease_seconds=lease_seconds)
    savepoint = session.begin_nested()
    job = None
    if fairshare.under_quota(session=session, owner=owner, max_running_per_user=max_running_per_user):
        job = _claim(session, _claim_statement("owner"), params, worker=worker, lease_seconds=lease_seconds)
    (savepoint.commit if job is not None else savepoint.rollback)()
    return job


def prepare_attempt(*, session: Session, job: Job) -> tuple[int, bytes] | None:
    """The checkpoint a just-claimed attempt resumes from (`(epoch, state)` or None), its history cut back to it.

    A first attempt has neither: only an attempt writes history rows and checkpoints, so nothing is read.
    """
    if job.attempts == 1:
        return None
    checkpoint = latest_checkpoint(session=session, job_id=job.id)
    truncate_history(session=session, job_id=job.id, after_epoch=checkpoint[0] if checkpoint else 0)
    return checkpoint


# The worker's heartbeat, history and finish are plain Core statements on the tables (no ORM unit of work, no
# identity map to synchronise): they run for every job, and each ORM layer costs CPU that tiny jobs feel (issue 11).
JOBS, HISTORY, ARTIFACTS = Job.__table__, HistoryChunk.__table__, Artifact.__table__


def _own(job_id: str, attempt: int):
    return (JOBS.c.id == job_id, JOBS.c.status == RUNNING, JOBS.c.attempts == attempt)


def heartbeat(*, session: Session, job_id: str, attempt: int, lease_seconds: float,
              epoch: int | None = None) -> bool:
    """Extend the lease (and record progress `epoch` when given); returns `cancel_requested`.

    Raises LeaseLost when this attempt no longer owns the job.
    """
    values: dict[str, Any] = {"lease_expires_at": utcnow() + timedelta(seconds=lease_seconds)}
    if epoch is not None:
        values["epoch"] = epoch
    cancel_requested = session.scalar(update(JOBS).where(*_own(job_id, attempt)).values(**values)
                                      .returning(JOBS.c.cancel_requested))
    if cancel_requested is None:
        raise LeaseLost(f"job {job_id} attempt {attempt} lost its lease")
    return bool(cancel_requested)


def record_epochs(*, session: Session, job_id: str, rows: list[dict]) -> None:
    """Store consecutive history rows as one chunk (call `heartbeat` with the last epoch in the same transaction)."""
    if rows:  # a plain INSERT, not the ORM's unit of work: the chunk is never read back here
        session.execute(insert(HISTORY).values(job_id=job_id, first_epoch=rows[0]["epoch"],
                                               last_epoch=rows[-1]["epoch"], rows=rows))


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
    if session.execute(update(JOBS).where(*_own(job_id, attempt)).values(epoch=epoch)).rowcount != 1:
        raise LeaseLost(f"job {job_id} attempt {attempt} lost its lease")
    _put_checkpoint(session, job_id, state, epoch)


def latest_checkpoint(*, session: Session, job_id: str) -> tuple[int, bytes] | None:
    """`(epoch, state)` of the job's last checkpoint, or None."""
    artifact = session.get(Artifact, (job_id, "checkpoint"))
    if artifact is None:
        return None
    return artifact.epoch, get_blob(session=session, sha256=artifact.blob_sha256)


def _put_checkpoint(session: Session, job_id: str, state: bytes, epoch: int) -> None:
    """Make `state` (after `epoch` epochs) the job's checkpoint artifact, then delete the blob it replaces unless
    another row refers to it."""
    sha = put_blob(session=session, data=state)
    artifact = session.get(Artifact, (job_id, "checkpoint"))
    old = None
    if artifact is None:
        session.add(Artifact(job_id=job_id, kind="checkpoint", blob_sha256=sha, epoch=epoch, size_bytes=len(state)))
    else:
        old = artifact.blob_sha256 if artifact.blob_sha256 != sha else None
        artifact.blob_sha256, artifact.epoch, artifact.size_bytes = sha, epoch, len(state)
        artifact.created_at = utcnow()
    session.flush()
    delete_blob_if_unreferenced(session=session, sha256=old)


def _add_results(session: Session, job_id: str, files: list[tuple[str, bytes, str | None]]) -> None:
    """Insert a finishing attempt's `(kind, data, format)` artifacts in one bulk INSERT (no unit of work), reading
    none first: the model and the confusion matrices are written only by `finish_job`, after its fenced UPDATE,
    which passes once per job (and reuse copies them only into jobs inserted finished), so none of these exists.
    Invariant: a feature that reruns a finished job must delete these first (or this raises IntegrityError)."""
    if files:
        shas = put_blobs(session=session, blobs=[data for _, data, _ in files])
        session.execute(insert(ARTIFACTS), [{"job_id": job_id, "kind": kind, "format": format, "size_bytes": len(data),
                                            "blob_sha256": sha} for (kind, data, format), sha in zip(files, shas)])


def _drop_artifact(session: Session, job_id: str, kind: str) -> None:
    """Delete the job's `kind` artifact, if any (one statement), then its blob unless another row refers to it."""
    sha = session.scalar(delete(Artifact).where(Artifact.job_id == job_id, Artifact.kind == kind)
                         .returning(Artifact.blob_sha256), execution_options={"synchronize_session": False})
    delete_blob_if_unreferenced(session=session, sha256=sha)


def finish_job(*, session: Session, job_id: str, attempt: int, status: str, metrics: dict | None = None,
               error: dict | None = None, model: bytes | None = None, model_format: str | None = None,
               versions: dict | None = None, stopped_early: bool = False, epoch: int | None = None,
               spec: dict | None = None, dataset_id: str | None = None, checkpointed: bool = True) -> None:
    """Record the end of an attempt in one transaction: final status, metrics/error and the model file.

    `status` is succeeded, failed or cancelled. Confusion matrices in `metrics` are stored as
    artifacts of their own (`trainyard.store.matrices`); the job row keeps the scalar metrics. The checkpoint
    is dropped (nothing will resume). Raises LeaseLost when this attempt no longer owns the job.
    A worker that knows more saves statements: `spec` with `dataset_id`, the job's as its claim returned them (not
    read again), and `checkpointed=False` when no checkpoint can exist (no attempt of the job saved one).
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
        values.update(refresh_fingerprint(session=session, job_id=job_id, versions=versions, spec=spec,
                                          dataset_id=dataset_id))
    if session.execute(update(JOBS).where(*_own(job_id, attempt)).values(**values)).rowcount != 1:
        raise LeaseLost(f"job {job_id} attempt {attempt} lost its lease")
    files = [("model", model, model_format)] if model is not None else []
    files += [(matrices.kind(split), matrices.encode(matrix), matrices.FORMAT) for split, matrix in confusion.items()]
    _add_results(session, job_id, files)
    if checkpointed:
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
        moved = session.execute(update(JOBS).where(*_own(job.id, job.attempts), JOBS.c.lease_expires_at < now)
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
