"""Jobs as the API sees them: create, read, list, queue position, history, model, confusion matrices, cancel, delete.

Every function takes `owner` (a user id) and treats another user's job as not found.
The worker's side of a job (claim, heartbeat, epochs, finish) is in `trainyard.store.runs`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import numpy as np
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from trainyard.core.provenance import backend_versions
from trainyard.core.spec import JobSpec, normalised
from trainyard.store import matrices, reuse
from trainyard.store.blobs import delete_blob_if_unreferenced, get_blob
from trainyard.store.fairshare import QueueView, priority_value
from trainyard.store.errors import (BadCursor, DatasetNotFound, IdempotencyKeyReused, JobFinished, JobNotFinished,
                                    ModelNotAvailable, NotFound)
from trainyard.store.retention import ensure_kept
from trainyard.store.models import (ACTIVE, CANCELLED, CANCELLED_ERROR, QUEUED, RUNNING, SUCCEEDED, Artifact, Dataset,
                                    HistoryChunk, Job, utcnow)

MAX_PAGE = 500
HISTORY_PAGE, MAX_HISTORY_PAGE = 1000, 10_000  # epochs per history page: the default and the most


def create_job(*, session: Session, owner: str, spec: JobSpec, idempotency_key: str | None = None,
               request_sha256: str | None = None, versions: dict | None = None) -> tuple[Job, bool]:
    """Insert a queued job for a validated spec; returns `(job, created)`.

    A spec identical to one of the owner's succeeded jobs (store.reuse: same normalised spec and seeds, data and
    library `versions`) is inserted already succeeded with that job's results, unless it says `"reuse": false`;
    the caller publishes only a job that is queued. `versions` are the backend's library versions the job would
    record (default: this process's installed ones, core.provenance).

    With an `idempotency_key` the owner already used, returns that earlier job and
    `created=False` — or raises IdempotencyKeyReused when both requests carry a
    `request_sha256` and they differ (the spec itself is not compared: an omitted seed
    is drawn afresh). Raises DatasetNotFound when `spec.dataset.id` is not one of the
    owner's datasets. The caller commits, then publishes (`trainyard.worker.publish.publish_job`).

    The dataset row is share-locked until the caller commits, so a concurrent
    `delete_dataset` waits and then finds this job (DatasetInUse), or this waits for the
    delete and finds no dataset — never a foreign-key violation.
    """
    if idempotency_key is not None:
        existing = earlier_job(session=session, owner=owner, idempotency_key=idempotency_key,
                               request_sha256=request_sha256)
        if existing is not None:
            return existing, False
    dataset_id, dataset = spec.dataset.id, None
    if dataset_id is not None:
        dataset = session.scalar(select(Dataset).where(Dataset.id == dataset_id, Dataset.owner_id == owner)
                                 .with_for_update(read=True, key_share=True))  # FOR KEY SHARE (SQLite: write lock)
        if dataset is None:
            raise DatasetNotFound(f"no dataset {dataset_id!r}")
    document = normalised(spec)
    if versions is None:
        versions = backend_versions(spec.backend)
    job = Job(owner_id=owner, name=spec.name, backend=spec.backend, device=spec.device, spec=document,
              dataset_id=dataset_id, idempotency_key=idempotency_key, request_sha256=request_sha256,
              epochs=spec.training.epochs, fingerprint=reuse.fingerprint(spec=document, dataset=dataset,
                                                                         versions=versions),
              priority=priority_value(spec.priority))
    source = (reuse.find_reusable(session=session, owner=owner, fingerprint=job.fingerprint)
              if spec.reuse and job.fingerprint else None)

    def add_job() -> None:
        if source is not None:
            reuse.reuse_results(session=session, job=job, source=source)
        session.add(job)
        session.flush()

    if idempotency_key is None:  # no concurrent request can win this insert: no savepoint (two round trips less)
        add_job()
        return job, True
    try:
        with session.begin_nested():  # a concurrent request with the same key may win the insert
            add_job()
    except IntegrityError:
        existing = earlier_job(session=session, owner=owner, idempotency_key=idempotency_key,
                               request_sha256=request_sha256)
        if existing is None:
            raise
        return existing, False
    return job, True


def earlier_job(*, session: Session, owner: str, idempotency_key: str, request_sha256: str | None = None) -> Job | None:
    """The job the owner already made with `idempotency_key`, if any (see `create_job` for the comparison)."""
    job = session.scalar(select(Job).where(Job.owner_id == owner, Job.idempotency_key == idempotency_key))
    if job is not None and request_sha256 is not None and job.request_sha256 not in (None, request_sha256):
        raise IdempotencyKeyReused(f"Idempotency-Key {idempotency_key!r} was already used for a different request "
                                   f"(job {job.id}); send a new key for a new job")
    return job


def get_job(*, session: Session, owner: str, job_id: str) -> Job:
    """The owner's job (NotFound otherwise)."""
    job = session.scalar(select(Job).where(Job.id == job_id, Job.owner_id == owner))
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job


def count_queued_jobs(*, session: Session, owner: str) -> int:
    """How many of the owner's jobs are queued (for the `max_queued_per_user` limit)."""
    return session.scalar(select(func.count()).select_from(Job).where(Job.owner_id == owner, Job.status == QUEUED))


def list_jobs(*, session: Session, owner: str, status: str | list[str] | None = None, backend: str | None = None,
              name: str | None = None, limit: int = 50, cursor: str | None = None) -> tuple[list[Job], str | None]:
    """The owner's jobs, newest first, filtered; returns `(jobs, next_cursor)` (None on the last page).

    `limit` is clipped to 1..500. `cursor` is a previous call's `next_cursor`; a
    malformed one raises BadCursor. The specs are not read (a stored spec can be megabytes).
    """
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Job).options(defer(Job.spec)).where(Job.owner_id == owner)
    if status is not None:
        query = query.where(Job.status.in_([status] if isinstance(status, str) else status))
    if backend is not None:
        query = query.where(Job.backend == backend)
    if name is not None:
        query = query.where(Job.name == name)
    if cursor is not None:
        created_at, job_id = _decode_cursor(cursor)
        query = query.where(or_(Job.created_at < created_at, and_(Job.created_at == created_at, Job.id < job_id)))
    jobs = list(session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)))
    if len(jobs) <= limit:
        return jobs, None
    last = jobs[limit - 1]
    return jobs[:limit], _encode_cursor(last.created_at, last.id)


def _encode_cursor(created_at: datetime, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{job_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, job_id = text.split("|", 1)
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("invalid cursor") from None
    if created_at.tzinfo is None or "\x00" in job_id:  # PostgreSQL cannot compare text holding NUL
        raise BadCursor("invalid cursor")
    return created_at, job_id


def queue_position(*, session: Session, job: Job, max_running_per_user: int = 0) -> int | None:
    """1 for the next job its queue will run, 2 for the one after… in the fair-share order; None unless queued."""
    return QueueView(session, live_seconds=0, max_running_per_user=max_running_per_user).position(job)


def pending_reason(*, session: Session, job: Job, live_seconds: float, max_running_per_user: int = 0) -> str | None:
    """Why a queued job waits, e.g. "no live worker listens on queue gpu"; None unless queued (store.fairshare)."""
    return QueueView(session, live_seconds=live_seconds, max_running_per_user=max_running_per_user).reason(job)


def get_history(*, session: Session, owner: str, job_id: str, since: int = 0,
                limit: int = HISTORY_PAGE) -> tuple[list[dict], int, bool]:
    """One page of the job's history: `(rows, next_since, has_more)`.

    The page holds the rows with `since < epoch <= since + limit`, in order: a window of epochs, so
    pages never overlap and every epoch is on exactly one of them however the job runs on in between.
    `next_since` is where the next page starts; `has_more` says whether rows past this page exist now.
    """
    ensure_kept(get_job(session=session, owner=owner, job_id=job_id), "history")  # 410 once retention purged it
    until = min(since + limit, 2**31 - 1)  # an INTEGER column holds no larger epoch (PostgreSQL would refuse it)
    rows = history_rows(session=session, job_id=job_id, since=since, until=until)
    more = session.scalar(select(HistoryChunk.first_epoch).where(
        HistoryChunk.job_id == job_id, HistoryChunk.last_epoch > until).limit(1)) is not None
    return rows, until if more else (rows[-1]["epoch"] if rows else since), more


def history_rows(*, session: Session, job_id: str, since: int = 0, until: int | None = None) -> list[dict]:
    """History rows with `since < epoch <= until` (no upper bound by default) of any job, in order.

    No owner check: for the worker and SSE loops. Only the chunks that overlap the window are read.
    """
    query = select(HistoryChunk.rows).where(HistoryChunk.job_id == job_id, HistoryChunk.last_epoch > since)
    if until is not None:
        query = query.where(HistoryChunk.first_epoch <= until)
    chunks = session.scalars(query.order_by(HistoryChunk.first_epoch))
    return [row for rows in chunks for row in rows if since < row["epoch"] and (until is None or row["epoch"] <= until)]


def get_model(*, session: Session, owner: str, job_id: str) -> tuple[bytes, str]:
    """The trained model file and its format (`npz`, `skops`, `keras`); ModelNotAvailable unless succeeded."""
    job = get_job(session=session, owner=owner, job_id=job_id)
    ensure_kept(job, "model")  # 410 once retention purged it
    artifact = session.get(Artifact, (job_id, "model"))
    if job.status != SUCCEEDED or artifact is None:
        raise ModelNotAvailable(f"job {job_id} has no model: it is {job.status}")
    return get_blob(session=session, sha256=artifact.blob_sha256), artifact.format


def get_confusion_matrix(*, session: Session, owner: str, job_id: str, split: str) -> np.ndarray:
    """One split's confusion matrix of a succeeded job (rows: true class, columns: predicted).

    ModelNotAvailable unless succeeded; NotFound, naming the splits it has, when the job has none for `split`
    (regression, or an empty split).
    """
    job = get_job(session=session, owner=owner, job_id=job_id)
    if job.status != SUCCEEDED:
        raise ModelNotAvailable(f"the job is {job.status}; only a succeeded job has confusion matrices")
    artifact = session.get(Artifact, (job_id, matrices.kind(split)))
    if artifact is None:
        kept = {matrices.split_of(k) for k in session.scalars(select(Artifact.kind).where(Artifact.job_id == job_id))}
        splits = [name for name in matrices.SPLITS if name in kept]
        raise NotFound(f"job {job_id} has no {split} confusion matrix; it has "
                       f"{', '.join(splits) if splits else 'none (a regression job, or no labelled split)'}")
    return matrices.decode(get_blob(session=session, sha256=artifact.blob_sha256))


def request_cancel(*, session: Session, owner: str, job_id: str) -> Job:
    """Cancel: a queued job becomes cancelled at once; a running one gets `cancel_requested` (its worker stops).

    Raises JobFinished (409) when the job already finished. Returns the job as it is now.
    """
    job = get_job(session=session, owner=owner, job_id=job_id)
    now = utcnow()
    # The flag first: claim_job never takes a job with cancel_requested, so no claim can slip in between.
    flagged = session.execute(update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
                              .values(cancel_requested=True)).rowcount
    if not flagged:
        session.refresh(job)
        raise JobFinished(f"job {job_id} already {job.status}")
    session.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED)
                    .values(status=CANCELLED, finished_at=now, error=CANCELLED_ERROR))
    session.refresh(job)
    return job


def delete_job(*, session: Session, owner: str, job_id: str) -> None:
    """Delete a finished job, its history and artifacts, and the blobs nothing else refers to.

    Raises JobNotFinished (409) while it is queued or running.
    """
    job = get_job(session=session, owner=owner, job_id=job_id)
    if job.status in (QUEUED, RUNNING):
        raise JobNotFinished(f"job {job_id} is {job.status}; cancel it first")
    shas = list(session.scalars(select(Artifact.blob_sha256).where(Artifact.job_id == job_id)))
    session.execute(delete(Artifact).where(Artifact.job_id == job_id))
    session.execute(delete(HistoryChunk).where(HistoryChunk.job_id == job_id))
    session.delete(job)
    session.flush()
    for sha in set(shas):
        delete_blob_if_unreferenced(session=session, sha256=sha)
