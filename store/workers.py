"""The workers table: workers register, report in, and leave; the API lists the live ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from trainyard.store.models import RUNNING, Job, User, Worker, utcnow


@dataclass(frozen=True)
class WorkerStatus:
    """A live worker as `GET /workers` shows it; `current_jobs` are the ids of the jobs it runs now."""

    name: str
    queues: list[str]
    device: str
    concurrency: int
    hostname: str
    pid: int
    started_at: datetime
    last_seen: datetime
    current_jobs: list[str]


def register_worker(*, session: Session, name: str, queues: list[str], device: str, concurrency: int,
                    hostname: str, pid: int) -> None:
    """Insert or refresh the worker's row (a restarted worker keeps its name)."""
    now = utcnow()
    worker = session.get(Worker, name)
    if worker is None:
        session.add(Worker(name=name, queues=list(queues), device=device, concurrency=concurrency,
                           hostname=hostname, pid=pid, started_at=now, last_seen=now))
        return
    worker.queues, worker.device, worker.concurrency = list(queues), device, concurrency
    worker.hostname, worker.pid, worker.started_at, worker.last_seen = hostname, pid, now, now


def touch_worker(*, session: Session, name: str) -> None:
    """Record that the worker is alive now."""
    session.execute(update(Worker).where(Worker.name == name).values(last_seen=utcnow()))


def unregister_worker(*, session: Session, name: str) -> None:
    """Remove the worker's row (it shuts down)."""
    session.execute(delete(Worker).where(Worker.name == name))


def prune_workers(*, session: Session, unseen_seconds: float) -> int:
    """Delete rows of workers not seen for `unseen_seconds` (killed without unregistering); how many."""
    since = utcnow() - timedelta(seconds=unseen_seconds)
    return session.execute(delete(Worker).where(Worker.last_seen < since)).rowcount


def list_live_workers(*, session: Session, live_seconds: float, owner_id: str | None = None) -> list[WorkerStatus]:
    """Workers seen within `live_seconds`, by name, each with the running jobs it holds: only `owner_id`'s jobs
    when given (what a user may see), every job when None."""
    since = utcnow() - timedelta(seconds=live_seconds)
    workers = list(session.scalars(select(Worker).where(Worker.last_seen >= since).order_by(Worker.name)))
    jobs: dict[str, list[str]] = {}
    if workers:
        running = select(Job.worker, Job.id).where(Job.status == RUNNING, Job.worker.in_([w.name for w in workers]))
        if owner_id is not None:
            running = running.where(Job.owner_id == owner_id)
        for worker, job_id in session.execute(running.order_by(Job.started_at, Job.id)):
            jobs.setdefault(worker, []).append(job_id)
    return [WorkerStatus(name=w.name, queues=list(w.queues), device=w.device, concurrency=w.concurrency,
                         hostname=w.hostname, pid=w.pid, started_at=w.started_at, last_seen=w.last_seen,
                         current_jobs=jobs.get(w.name, [])) for w in workers]


def is_operator(*, session: Session, user_id: str, operators: frozenset[str]) -> bool:
    """Whether the user's name is one of `operators` (the names in the `operator_users` setting)."""
    return bool(operators) and session.scalar(select(User.name).where(User.id == user_id)) in operators
