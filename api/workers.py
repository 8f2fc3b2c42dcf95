"""GET /workers: the live workers, their queues and device, and the caller's jobs they run now.

A user sees only their own jobs on each worker; the worker's hostname and process id,
and everyone's jobs, only an operator (a user named in `operator_users`).
"""

from __future__ import annotations

from flask import Blueprint

from trainyard.api.auth import user_id
from trainyard.api.context import session, state
from trainyard.core.jsonsafe import isoformat
from trainyard.store.workers import WorkerStatus, is_operator, list_live_workers

bp = Blueprint("workers", __name__)


def operators() -> frozenset[str]:
    """The user names in the `operator_users` setting."""
    return frozenset(name.strip() for name in state().settings.operator_users.split(",") if name.strip())


def worker_body(w: WorkerStatus, *, operator: bool) -> dict:
    """One worker as `GET /workers` shows it; `hostname` and `pid` only to an operator."""
    body = {"name": w.name, "queues": w.queues, "device": w.device, "concurrency": w.concurrency,
            "current_job": w.current_jobs[0] if w.current_jobs else None, "current_jobs": w.current_jobs,
            "started_at": isoformat(w.started_at), "last_seen": isoformat(w.last_seen)}
    if operator:
        body.update(hostname=w.hostname, pid=w.pid)
    return body


@bp.get("/workers")
def get_workers():
    """Workers seen within `worker_live_seconds`."""
    db, me = session(), user_id()
    operator = is_operator(session=db, user_id=me, operators=operators())
    live = list_live_workers(session=db, live_seconds=state().settings.worker_live_seconds,
                             owner_id=None if operator else me)
    return {"items": [worker_body(w, operator=operator) for w in live]}
