"""Retention: a finished job older than `retention_days` loses its history, checkpoint and model unless pinned.

The job row stays, with its scalar metrics, confusion matrices and error, and says what it lost and when
(`jobs.purged`, `jobs.purged_at`); the API answers 410 Gone for a part that was purged (`ensure_kept`). A job is
purged by one conditional UPDATE that re-checks every condition, so a pin (or a sweep's pin) committed before it
wins, and a queued or running job is never touched. The blobs its artifacts pointed at are left to
store.orphans, which deletes a blob only when nothing (another job sharing a model, a dataset) refers to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Text, and_, cast, delete, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from trainyard.store.errors import Purged
from trainyard.store.models import FINISHED, Artifact, HistoryChunk, Job, Sweep, User

PURGED_KINDS = ("model", "checkpoint")  # artifacts retention removes; confusion matrices stay (small results)
PARTS = ("history", "checkpoint", "model")  # what `jobs.purged` may list


def purgeable(cutoff: datetime) -> ColumnElement[bool]:
    """The jobs retention purges: finished before `cutoff`, not purged yet, not pinned, not a trial of a pinned or
    running sweep."""
    return and_(Job.status.in_(FINISHED), Job.finished_at < cutoff, Job.purged_at.is_(None), Job.pinned.is_(False),
                *_sweep_keeps())


def _sweep_keeps() -> list[ColumnElement[bool]]:
    """A sweep keeps all its trials while it is pinned, and while it runs (its pruner reads their histories)."""
    return [~select(Sweep.id).where(Sweep.id == Job.sweep_id,
                                   or_(Sweep.pinned.is_(True), Sweep.status.not_in(FINISHED))).exists()]


def purged_artifacts(cutoff: datetime) -> ColumnElement[bool]:
    """A condition on Artifact: an artifact that purging the jobs purgeable now would delete."""
    return and_(Artifact.kind.in_(PURGED_KINDS), Artifact.job_id.in_(select(Job.id).where(purgeable(cutoff))))


@dataclass
class PurgedJob:
    """One job's share of a purge: what it lost and how much."""

    id: str
    owner: str
    finished_at: datetime | None
    removed: list[str] = field(default_factory=list)
    history_chunks: int = 0
    history_epochs: int = 0
    history_bytes: int = 0  # the stored JSON text of its rows
    artifacts: int = 0
    artifact_bytes: int = 0  # what its model and checkpoint files hold (their blobs may be shared)

    def to_dict(self) -> dict:
        return {"id": self.id, "owner": self.owner,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None, "removed": self.removed,
                "history_epochs": self.history_epochs, "history_bytes": self.history_bytes,
                "artifact_bytes": self.artifact_bytes}


def candidates(*, session: Session, cutoff: datetime, limit: int,
               after: tuple[datetime, str] | None = None) -> list[PurgedJob]:
    """Up to `limit` jobs purgeable now, oldest first (after the `(finished_at, id)` of an earlier page), with what
    purging each would remove; nothing is changed."""
    query = (select(Job.id, User.name, Job.finished_at).join(User, User.id == Job.owner_id)
             .where(purgeable(cutoff)).order_by(Job.finished_at, Job.id).limit(limit))
    if after is not None:
        query = query.where(tuple_(Job.finished_at, Job.id) > tuple_(*after))
    jobs = {job_id: PurgedJob(job_id, owner, finished) for job_id, owner, finished in session.execute(query)}
    if not jobs:
        return []
    ids = list(jobs)
    for job_id, chunks, epochs, size in session.execute(_history_totals(HistoryChunk.job_id.in_(ids))
                                                        .group_by(HistoryChunk.job_id)):
        job = jobs[job_id]
        job.history_chunks, job.history_epochs, job.history_bytes = chunks, int(epochs or 0), int(size or 0)
    for job_id, kind, size in session.execute(select(Artifact.job_id, Artifact.kind, Artifact.size_bytes).where(
            Artifact.job_id.in_(ids), Artifact.kind.in_(PURGED_KINDS))):
        jobs[job_id].artifacts += 1
        jobs[job_id].artifact_bytes += size
        jobs[job_id].removed.append(kind)
    for job in jobs.values():
        job.removed = _parts(job.history_chunks > 0, job.removed)
    return list(jobs.values())


def _history_totals(where: ColumnElement[bool]):
    return select(HistoryChunk.job_id, func.count(), func.sum(HistoryChunk.last_epoch - HistoryChunk.first_epoch + 1),
                  func.sum(func.length(cast(HistoryChunk.rows, Text)))).where(where)


def _parts(history: bool, kinds: list[str]) -> list[str]:
    return [part for part in PARTS if (history if part == "history" else part in kinds)]


def purge_job(*, session: Session, job: PurgedJob, cutoff: datetime, now: datetime) -> bool:
    """Purge one job in the caller's transaction if it is still purgeable; fills in `job`; True if purged.

    Its sweep's row is share-locked first (PostgreSQL), so a sweep pin being committed is waited for and then seen
    by the conditional UPDATE below, or waits for this transaction.
    """
    session.execute(select(Sweep.id).where(Sweep.id == select(Job.sweep_id).where(Job.id == job.id)
                                           .scalar_subquery()).with_for_update(read=True))
    if session.execute(update(Job).where(Job.id == job.id, purgeable(cutoff)).values(purged_at=now, purged=[])
                       .execution_options(synchronize_session=False)).rowcount != 1:
        return False  # pinned, purged or deleted meanwhile
    _, chunks, epochs, size = session.execute(
        _history_totals(HistoryChunk.job_id == job.id).group_by(HistoryChunk.job_id)).one_or_none() or (0, 0, 0, 0)
    artifacts = session.execute(select(Artifact.kind, Artifact.size_bytes).where(
        Artifact.job_id == job.id, Artifact.kind.in_(PURGED_KINDS))).all()
    session.execute(delete(HistoryChunk).where(HistoryChunk.job_id == job.id))
    session.execute(delete(Artifact).where(Artifact.job_id == job.id, Artifact.kind.in_(PURGED_KINDS)))
    job.history_chunks, job.history_epochs, job.history_bytes = chunks, int(epochs or 0), int(size or 0)
    job.artifacts, job.artifact_bytes = len(artifacts), sum(s for _, s in artifacts)
    job.removed = _parts(chunks > 0, [kind for kind, _ in artifacts])
    session.execute(update(Job).where(Job.id == job.id).values(purged=job.removed)
                    .execution_options(synchronize_session=False))
    return True


def ensure_kept(job: Job, part: str) -> None:
    """Raise Purged (HTTP 410) when retention removed `part` (history, model) of `job`."""
    if job.purged_at is not None and part in (job.purged or ()):
        when = job.purged_at.strftime("%Y-%m-%d %H:%M UTC")
        raise Purged(f"the {part} of job {job.id} was removed on {when} by the retention policy (finished jobs "
                     f"older than retention_days lose their history, checkpoint and model unless pinned); its "
                     f"metrics remain at GET /api/v1/jobs/{job.id}")


def set_pinned(*, session: Session, owner: str, job_id: str, pinned: bool) -> Job:
    """Pin or unpin the owner's job (NotFound otherwise); the job as it is now."""
    from trainyard.store.jobs import get_job

    job = get_job(session=session, owner=owner, job_id=job_id)
    job.pinned = pinned
    session.flush()
    return job


def set_sweep_pinned(*, session: Session, owner: str, sweep_id: str, pinned: bool) -> Sweep:
    """Pin or unpin the owner's sweep, and with it every trial (NotFound otherwise); the sweep as it is now."""
    from trainyard.store.sweeps import get_sweep

    sweep = get_sweep(session=session, owner=owner, sweep_id=sweep_id)
    sweep.pinned = pinned
    session.flush()
    return sweep
