"""/jobs/{id}/pin: POST pins a job (retention never purges it), DELETE unpins it; both answer the job.

A pin is an ordinary write (a job's owner may pin it at any status: a queued job is kept when it finishes). It
does not bring back what retention already purged; the job's `purged` says what that was.
"""

from __future__ import annotations

from flask import Blueprint

from api.auth import user_id
from api.context import session, writing
from api.jobs import job_view
from store import retention

bp = Blueprint("pins", __name__)


def _pin(job_id: str, pinned: bool):
    with writing() as w:
        job = retention.set_pinned(session=w, owner=user_id(), job_id=job_id, pinned=pinned)
    return job_view(session(), job)


@bp.post("/jobs/<job_id>/pin")
def pin_job(job_id: str):
    """200 with the job, now pinned (pinning a pinned job changes nothing)."""
    return _pin(job_id, True)


@bp.delete("/jobs/<job_id>/pin")
def unpin_job(job_id: str):
    """200 with the job, now unpinned: retention may purge it once it is older than retention_days."""
    return _pin(job_id, False)


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
ROUTES = {
    "/jobs/{job_id}/pin": {
        "post": ("Pin a job: retention never purges its history, checkpoint or model", None,
                 {200: "Job", 401: "Problem", 404: "Problem"}, {"parameters": [JOB_ID]}),
        "delete": ("Unpin a job: retention may purge it once it is older than retention_days", None,
                   {200: "Job", 401: "Problem", 404: "Problem"}, {"parameters": [JOB_ID]}),
    },
}
# Operations that answer 410 Gone once retention purged what they serve.
PURGEABLE = {"/jobs/{job_id}/history": "get", "/jobs/{job_id}/model": "get", "/jobs/{job_id}/predict": "post"}


def document(routes: dict) -> None:
    """Add the pin routes, and the 410 of the operations retention affects, to api.openapi's ROUTES."""
    routes.update(ROUTES)
    for path, method in PURGEABLE.items():
        summary, body, responses, extra = routes[path][method]
        routes[path][method] = (summary, body, {**responses, 410: "Problem"}, extra)
