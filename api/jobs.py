"""/jobs: submit, list, read, cancel, delete (results — history, events, model, predict — are in api.results)."""

from __future__ import annotations

import hashlib
import json
import logging

from flask import Blueprint, request

from trainyard.api import views
from trainyard.api.context import celery_app, session, state, writing
from trainyard.api.auth import user_id
from trainyard.api.errors import ApiError, invalid
from trainyard.api.jsonio import parse_json
from trainyard.api.offload import offload
from trainyard.api.params import page_limit
from trainyard.api.schemas import JobStatus
from trainyard.api.submit import check_queue_limit, validate_submission
from trainyard.core.spec import BACKENDS
from trainyard.store import jobs as repo
from trainyard.store.errors import DatasetNotFound
from trainyard.store.reuse import has_reusable
from trainyard.store.fairshare import QueueView
from trainyard.store.models import QUEUED, Job

bp = Blueprint("jobs", __name__)
log = logging.getLogger(__name__)
STATUSES = JobStatus.__args__
MAX_KEY = 200


def job_view(db, job: Job, queue: QueueView | None = None, shape=views.job_body) -> dict:
    """The job's body (or another `shape` of it, e.g. `views.job_summary`), with its queue position and pending
    reason while queued (store.fairshare).

    `queue` reads each queue's state once across a page of jobs.
    """
    if queue is None:
        queue = queue_view(db)
    return shape(job, queue_position=queue.position(job), pending_reason=queue.reason(job))


def queue_view(db) -> QueueView:
    """Queue positions and pending reasons as this service's settings define them."""
    settings = state().settings
    return QueueView(db, live_seconds=settings.worker_live_seconds,
                     max_running_per_user=settings.max_running_per_user)


def _publish(job: Job) -> None:
    """Send the job id to its queue; on failure the job stays queued and the reconciler sends it later."""
    try:
        from trainyard.worker.publish import publish_job

        publish_job(celery=celery_app(), job_id=job.id, device=job.device)
    except Exception:  # the broker may be down: never fail a committed submission
        log.warning("could not publish job %s; the reconciler will send it", job.id, exc_info=True)


@bp.post("/jobs")
def submit_job():
    """Submit a spec. 201 + Location for a new job; 200 with the earlier job for a reused Idempotency-Key."""
    db, owner, settings = session(), user_id(), state().settings
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= MAX_KEY:
        raise invalid([{"loc": "Idempotency-Key", "msg": f"must be 1 to {MAX_KEY} characters"}])
    doc = offload(parse_json, request.get_data(), settings, what="a JSON job spec", max_items=settings.max_spec_items)
    # The same key must come with the same request: a retry, not a new job under an old key.
    fingerprint = hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    if key is not None:
        earlier = repo.earlier_job(session=db, owner=owner, idempotency_key=key, request_sha256=fingerprint)
        if earlier is not None:
            body = job_view(db, earlier)
            return body, 200, {"Location": body["links"]["self"]}
    spec = validate_submission(doc, db=db, owner=owner, settings=settings)
    try:
        check_queue_limit(db=db, owner=owner, settings=settings)  # refuse early, before the write lock
    except ApiError:
        if not has_reusable(session=db, owner=owner, spec=spec):  # a reused job takes no place in the queue
            raise
    try:
        with writing() as w:
            job, created = repo.create_job(session=w, owner=owner, spec=spec, idempotency_key=key,
                                           request_sha256=fingerprint)
            if created and job.status == QUEUED:  # again in the write that inserts, so concurrent submits
                check_queue_limit(db=w, owner=owner, settings=settings, inserted=1)  # cannot pass it together
    except DatasetNotFound:  # it was there when the spec was validated: deleted since, by a concurrent request
        raise ApiError(409, f"dataset {spec.dataset.id!r} was deleted while this job was being submitted; "
                            "it is not submitted", kind="conflict") from None
    if created and job.status == QUEUED:  # a job that reused earlier results is finished already
        _publish(job)
    body = job_view(db, job)
    return body, 201 if created else 200, {"Location": body["links"]["self"]}


@bp.get("/jobs")
def list_jobs():
    """Summaries of the caller's jobs, newest first; filters status (repeated or comma-separated), backend, name; cursor
    pagination. `GET /jobs/{id}` has the whole job."""
    statuses = [s for value in request.args.getlist("status") for s in value.split(",") if s] or None
    for s in statuses or ():
        if s not in STATUSES:
            raise invalid([{"loc": "status", "msg": f"unknown status {s!r}; valid: {', '.join(STATUSES)}"}])
    backend = request.args.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise invalid([{"loc": "backend", "msg": f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}"}])
    db = session()
    jobs, cursor = repo.list_jobs(session=db, owner=user_id(), status=statuses, backend=backend,
                                  name=request.args.get("name"), limit=page_limit(50, repo.MAX_PAGE),
                                  cursor=request.args.get("cursor"))
    queue = queue_view(db)
    return {"items": [job_view(db, j, queue, views.job_summary) for j in jobs], "next_cursor": cursor}


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    """One job."""
    db = session()
    return job_view(db, repo.get_job(session=db, owner=user_id(), job_id=job_id))


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str):
    """202: a queued job is cancelled now, a running one stops at its next epoch or batch; 409 if finished."""
    with writing() as w:
        job = repo.request_cancel(session=w, owner=user_id(), job_id=job_id)
    return job_view(session(), job), 202


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str):
    """204; 409 while queued or running."""
    with writing() as w:
        repo.delete_job(session=w, owner=user_id(), job_id=job_id)
    state().predictors.forget(job_id)
    return "", 204
