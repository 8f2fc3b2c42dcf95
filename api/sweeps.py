"""/sweeps: create, list, read, trials, cancel, delete and events of hyperparameter sweeps (README "Sweeps").

A sweep's trials are ordinary jobs (`GET /jobs/{job_id}`); the controller (worker/controller.py) creates them.
This module runs the controller's step itself once after a create or cancel, so the first trials are queued
(or the sweep ends) before the response is sent.
"""

from __future__ import annotations

import hashlib
import json
import logging

from flask import Blueprint, Response, g, request

from trainyard.api import sweep_events
from trainyard.api.auth import user_id
from trainyard.api.context import celery_app, session, state, writing
from trainyard.api.errors import invalid
from trainyard.api.jsonio import parse_json
from trainyard.api.offload import offload
from trainyard.api.params import page_limit
from trainyard.api.sweep_submit import validate_sweep
from trainyard.api.urls import PREFIX
from trainyard.api.views import api_spec
from trainyard.core.jsonsafe import isoformat
from trainyard.store import sweeps as repo
from trainyard.store.models import FINISHED, Sweep

bp = Blueprint("sweeps", __name__)
log = logging.getLogger(__name__)
SWEEP_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
SORTS = ("trial", "objective")
MAX_KEY = 200


def sweep_links(sweep_id: str) -> dict[str, str]:
    base = f"{PREFIX}/sweeps/{sweep_id}"
    return {"self": base, "trials": f"{base}/trials", "events": f"{base}/events", "cancel": f"{base}/cancel"}


def sweep_status(sweep: Sweep, counts: dict[str, int]) -> str:
    """`queued` until a trial starts, then `running`, then how it ended."""
    if sweep.status in FINISHED:
        return sweep.status
    return "running" if sum(counts.values()) - counts["queued"] > 0 else "queued"


def sweep_body(sweep: Sweep, counts: dict[str, int], best: dict | None, *, full: bool = True) -> dict:
    """One sweep as GET /sweeps/{id} shows it (`full=False`: without the base spec, as lists show it)."""
    req = sweep.request
    body = {"id": sweep.id, "name": sweep.name, "status": sweep_status(sweep, counts),
            "created_at": isoformat(sweep.created_at), "finished_at": isoformat(sweep.finished_at),
            "trials": sweep.trials, "parallel": sweep.parallel, "space": req["space"],
            "objective": req["objective"], "sampler": req["sampler"], "pruner": req["pruner"], "counts": counts,
            "created": sweep.next_trial, "best": best, "error": sweep.error,
            "cancel_requested": bool(sweep.cancel_requested), "pinned": bool(sweep.pinned),
            "links": sweep_links(sweep.id)}
    if full:
        body["base"] = api_spec(req["base"])  # as the OpenAPI document declares a spec: no `dataset.path`
    return body


def view(db, sweep: Sweep, *, full: bool = True) -> dict:
    counts = repo.counts(session=db, sweep_ids=[sweep.id])[sweep.id]
    return sweep_body(sweep, counts, repo.best_trial(session=db, sweep=sweep), full=full)


def _step(sweep_id: str) -> None:
    """One controller step now (see the module docstring); the periodic controller retries if it fails."""
    from trainyard.worker.controller import step

    st = state()
    try:
        step(settings=st.settings, factory=st.sessions, sweep_id=sweep_id, celery=celery_app(), prune=False,
             compute=offload)  # the database work here (gevent sees it), Optuna's in the thread pool
    except Exception:  # the database or broker may be briefly down: the sweep is stored, the controller goes on
        log.warning("sweep %s: first step failed; the controller will take it", sweep_id, exc_info=True)


@bp.post("/sweeps")
def create_sweep():
    """201 + Location: the sweep, its first trials queued; 200 with the earlier sweep for a reused Idempotency-Key."""
    db, owner, settings = session(), user_id(), state().settings
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= MAX_KEY:
        raise invalid([{"loc": "Idempotency-Key", "msg": f"must be 1 to {MAX_KEY} characters"}])
    doc = offload(parse_json, request.get_data(), settings, what="a JSON sweep", max_items=settings.max_spec_items)
    fingerprint = hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    if key is not None:  # a retry: the sweep the first request made (a sampler seed drawn then is kept)
        earlier = repo.earlier_sweep(session=db, owner=owner, idempotency_key=key, request_sha256=fingerprint)
        if earlier is not None:
            body = view(db, earlier)
            return body, 200, {"Location": body["links"]["self"]}
    sweep_request = validate_sweep(doc, db=db, owner=owner, settings=settings)  # offloads each spec's validation
    with writing() as w:
        sweep, created = repo.create_sweep(session=w, owner=owner, request=sweep_request.as_json(),
                                           idempotency_key=key, request_sha256=fingerprint)
    if created:
        _step(sweep.id)
    db = session()
    body = view(db, repo.get_sweep(session=db, owner=owner, sweep_id=sweep.id))
    return body, 201 if created else 200, {"Location": body["links"]["self"]}


@bp.get("/sweeps")
def list_sweeps():
    """The caller's sweeps, newest first (without their base spec); filter `status`; cursor pagination."""
    statuses = [s for value in request.args.getlist("status") for s in value.split(",") if s] or None
    for s in statuses or ():
        if s not in SWEEP_STATUSES:
            raise invalid([{"loc": "status", "msg": f"unknown status {s!r}; valid: {', '.join(SWEEP_STATUSES)}"}])
    stored = None
    if statuses:  # queued and running are both stored as running (the difference is whether a trial started)
        stored = sorted({"running" if s in ("queued", "running") else s for s in statuses})
    db = session()
    sweeps, cursor = repo.list_sweeps(session=db, owner=user_id(), status=stored, limit=page_limit(50, repo.MAX_PAGE),
                                      cursor=request.args.get("cursor"))
    counts = repo.counts(session=db, sweep_ids=[s.id for s in sweeps])
    items = [sweep_body(s, counts[s.id], repo.best_trial(session=db, sweep=s), full=False) for s in sweeps]
    if statuses:
        items = [i for i in items if i["status"] in statuses]
    return {"items": items, "next_cursor": cursor}


@bp.get("/sweeps/<sweep_id>")
def get_sweep(sweep_id: str):
    db = session()
    return view(db, repo.get_sweep(session=db, owner=user_id(), sweep_id=sweep_id))


@bp.get("/sweeps/<sweep_id>/trials")
def list_trials(sweep_id: str):
    """`{"items": [{trial, job_id, state, params, value, epoch, epochs, error}], "next_cursor"}`; `sort=trial`
    (default) or `objective` (best first, trials without a value last)."""
    sort = request.args.get("sort") or "trial"
    if sort not in SORTS:
        raise invalid([{"loc": "sort", "msg": f"must be one of {', '.join(SORTS)}"}])
    db = session()
    sweep = repo.get_sweep(session=db, owner=user_id(), sweep_id=sweep_id)
    items, cursor = repo.list_trials(session=db, sweep=sweep, limit=page_limit(50, repo.MAX_PAGE),
                                     cursor=request.args.get("cursor"), sort=sort)
    return {"items": items, "next_cursor": cursor}


@bp.post("/sweeps/<sweep_id>/cancel")
def cancel_sweep(sweep_id: str):
    """202: no more trials; queued ones cancelled now, running ones stop at their next epoch; 409 if it ended."""
    owner = user_id()
    with writing() as w:
        repo.cancel_sweep(session=w, owner=owner, sweep_id=sweep_id)
    _step(sweep_id)  # ends the sweep now when no trial was running
    db = session()
    return view(db, repo.get_sweep(session=db, owner=owner, sweep_id=sweep_id)), 202


@bp.delete("/sweeps/<sweep_id>")
def delete_sweep(sweep_id: str):
    """204: the sweep and its trials' jobs; 409 while it runs."""
    with writing() as w:
        job_ids = repo.delete_sweep(session=w, owner=user_id(), sweep_id=sweep_id)
    for job_id in job_ids:
        state().predictors.forget(job_id)
    return "", 204


@bp.get("/sweeps/<sweep_id>/events")
def sweep_events_stream(sweep_id: str):
    """Server-Sent Events: a `trial` event per trial change and a `sweep` event per change of the sweep; ends after
    the sweep's final `sweep` event."""
    owner = user_id()
    repo.get_sweep(session=session(), owner=owner, sweep_id=sweep_id)  # 404 before streaming
    st = state()
    stream = sweep_events.stream(st.feed, st.settings, sweep_id, token=g.get("token"), owner=owner)
    return Response(stream, mimetype="text/event-stream", headers={"Cache-Control": "no-cache",
                                                                   "X-Accel-Buffering": "no"})
