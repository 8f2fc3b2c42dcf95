"""A job's results: /history, /events (Server-Sent Events), /model (download) and /predict."""

from __future__ import annotations

import re
import time
from typing import Iterator

from flask import Blueprint, Response, request

from api import views
from api.context import State, session, state
from api.auth import user_id
from api.errors import invalid
from api.jsonio import dumps
from api.predicting import no_model, parse_inputs, predict_body
from core.backends import load_predictor
from store import jobs as repo
from store.models import FINISHED, SUCCEEDED, Job

bp = Blueprint("results", __name__)
EXTENSIONS = {"npz": "npz", "skops": "skops", "keras": "keras"}
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
MAX_STREAM_SECONDS = 3600.0  # then the client reconnects with Last-Event-ID


def _since(name: str, raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise invalid([{"loc": name, "msg": f"{raw!r} is not an integer"}]) from None
    if value < 0:
        raise invalid([{"loc": name, "msg": "must be >= 0"}])
    return value


@bp.get("/jobs/<job_id>/history")
def get_history(job_id: str):
    """Every epoch so far, or those after `since`."""
    rows = repo.get_history(session=session(), owner=user_id(), job_id=job_id,
                            since=_since("since", request.args.get("since")))
    return {"epochs": rows}


def _event(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {dumps(data)}\n\n"


def _stream(st: State, job_id: str, since: int) -> Iterator[str]:
    """`progress` per new epoch (id = epoch), `status` on every status change; ends after the terminal status.

    Each poll uses its own short session: on SQLite every transaction holds the write
    lock, so nothing is held open between polls.
    """
    status, started, last_sent = None, time.monotonic(), time.monotonic()
    yield "retry: 2000\n\n"
    while time.monotonic() - started < MAX_STREAM_SECONDS:
        with st.read_sessions() as db:
            job = db.get(Job, job_id)
            if job is None:  # deleted meanwhile
                yield _event("status", {"id": job_id, "status": "deleted"})
                return
            rows = repo.history_rows(session=db, job_id=job_id, since=since) if job.epoch > since else []
            body = views.job_body(job) if job.status != status else None
        for row in rows:
            yield _event("progress", {"status": job.status, "epoch": row["epoch"], "epochs": job.epochs, **row},
                         row["epoch"])
            since = row["epoch"]
        if body is not None:
            status = job.status
            yield _event("status", body)
            if status in FINISHED:
                return
        if rows or body is not None:
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        time.sleep(POLL_SECONDS)


@bp.get("/jobs/<job_id>/events")
def get_events(job_id: str):
    """Server-Sent Events until the job finishes; `Last-Event-ID` (or `since`) resumes after that epoch."""
    repo.get_job(session=session(), owner=user_id(), job_id=job_id)  # 404 before streaming
    since = _since("Last-Event-ID", request.headers.get("Last-Event-ID")) or _since("since", request.args.get("since"))
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(_stream(state(), job_id, since), mimetype="text/event-stream", headers=headers)


@bp.get("/jobs/<job_id>/model")
def get_model(job_id: str):
    """The model file as an attachment named after the job, with its format's extension."""
    db = session()
    job = repo.get_job(session=db, owner=user_id(), job_id=job_id)
    if job.status != SUCCEEDED:
        raise no_model(job.status)
    data, fmt = repo.get_model(session=db, owner=user_id(), job_id=job_id)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", job.name or "").strip("._") or job.id  # a header-safe name
    filename = f"{stem}.{EXTENSIONS.get(fmt, fmt)}"
    return Response(data, mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post("/jobs/<job_id>/predict")
def predict(job_id: str):
    """Raw feature rows → original labels (or numbers) and class probabilities."""
    db, owner, st = session(), user_id(), state()
    job = repo.get_job(session=db, owner=owner, job_id=job_id)
    if job.status != SUCCEEDED:
        raise no_model(job.status)
    body = request.get_json(force=True, silent=True)

    def load():
        return load_predictor(repo.get_model(session=db, owner=owner, job_id=job_id)[0])

    predictor = st.predictors.get(job_id, load)
    db.close()  # the model is in memory; free the connection (and SQLite's lock) before computing
    x = parse_inputs(body, n_features=predictor.preprocessing.n_features, max_rows=st.settings.max_predict_rows)
    return predict_body(predictor, x)
