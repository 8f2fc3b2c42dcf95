"""GET /workers: the live workers, their queues and device, and the jobs they run now."""

from __future__ import annotations

from flask import Blueprint

from api.context import session, state
from api.jsonio import isoformat
from store.workers import list_live_workers

bp = Blueprint("workers", __name__)


@bp.get("/workers")
def get_workers():
    """Workers seen within `worker_live_seconds`."""
    live = list_live_workers(session=session(), live_seconds=state().settings.worker_live_seconds)
    return {"items": [{
        "name": w.name, "queues": w.queues, "device": w.device, "concurrency": w.concurrency,
        "hostname": w.hostname, "pid": w.pid, "current_job": w.current_jobs[0] if w.current_jobs else None,
        "current_jobs": w.current_jobs, "started_at": isoformat(w.started_at), "last_seen": isoformat(w.last_seen),
    } for w in live]}
