"""/jobs/{id}/pin and /sweeps/{id}/pin: POST pins (retention never purges the job, or any trial of the sweep),
DELETE unpins; both answer the job or sweep as GET shows it.

A pin is an ordinary write (an owner may pin at any status: a queued job is kept when it finishes). It does not
bring back what retention already purged; the job's `purged` says what that was.
"""

from __future__ import annotations

from flask import Blueprint

from trainyard.api.auth import user_id
from trainyard.api.context import session, writing
from trainyard.api.jobs import job_view
from trainyard.store import retention

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


@bp.post("/sweeps/<sweep_id>/pin")
def pin_sweep(sweep_id: str):
    """200 with the sweep, now pinned: retention purges none of its trials."""
    return _pin_sweep(sweep_id, True)


@bp.delete("/sweeps/<sweep_id>/pin")
def unpin_sweep(sweep_id: str):
    """200 with the sweep, now unpinned: its finished trials older than retention_days may be purged (unless pinned
    one by one) once the sweep has finished."""
    return _pin_sweep(sweep_id, False)


def _pin_sweep(sweep_id: str, pinned: bool):
    from trainyard.api.sweeps import view

    with writing() as w:
        sweep = retention.set_sweep_pinned(session=w, owner=user_id(), sweep_id=sweep_id, pinned=pinned)
    return view(session(), sweep)


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
SWEEP_ID = {"name": "sweep_id", "in": "path", "required": True, "schema": {"type": "string"}}
ROUTES = {
    "/jobs/{job_id}/pin": {
        "post": ("Pin a job: retention never purges its history, checkpoint or model", None,
                 {200: "Job", 401: "Problem", 404: "Problem"}, {"parameters": [JOB_ID]}),
        "delete": ("Unpin a job: retention may purge it once it is older than retention_days", None,
                   {200: "Job", 401: "Problem", 404: "Problem"}, {"parameters": [JOB_ID]}),
    },
    "/sweeps/{sweep_id}/pin": {
        "post": ("Pin a sweep: retention purges none of its trials", None,
                 {200: "Sweep", 401: "Problem", 404: "Problem"}, {"parameters": [SWEEP_ID]}),
        "delete": ("Unpin a sweep: its trials may be purged once it has finished and they are older than "
                   "retention_days", None, {200: "Sweep", 401: "Problem", 404: "Problem"}, {"parameters": [SWEEP_ID]}),
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
