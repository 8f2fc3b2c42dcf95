"""A job's results: /history, /events (Server-Sent Events), /model (download), /confusion-matrix and /predict."""

from __future__ import annotations

import re

import numpy as np
from flask import Blueprint, Response, g, request

from trainyard.api import events, model_export
from trainyard.api.context import session, state
from trainyard.api.auth import user_id
from trainyard.api.errors import invalid
from trainyard.api.jsonio import dumps, parse_json
from trainyard.api.offload import offload
from trainyard.api.params import int_param, page_limit
from trainyard.api.predicting import no_model, outputs, parse_inputs, predict_body
from trainyard.core.backends import load_serving_predictor
from trainyard.store import jobs as repo
from trainyard.store import matrices
from trainyard.store.models import SUCCEEDED
from trainyard.store.retention import ensure_kept

bp = Blueprint("results", __name__)
EXTENSIONS = {"npz": "npz", "skops": "skops", "keras": "keras"}


@bp.get("/jobs/<job_id>/history")
def get_history(job_id: str):
    """One page of epochs: those after `since` (default 0), at most `limit`; `next_since` continues."""
    rows, next_since, more = repo.get_history(
        session=session(), owner=user_id(), job_id=job_id, since=int_param("since", request.args.get("since"), default=0),
        limit=page_limit(repo.HISTORY_PAGE, repo.MAX_HISTORY_PAGE))
    return {"epochs": rows, "next_since": next_since, "has_more": more}


@bp.get("/jobs/<job_id>/events")
def get_events(job_id: str):
    """Server-Sent Events until the job finishes; `Last-Event-ID` (or `since`) resumes after that epoch."""
    owner = user_id()
    repo.get_job(session=session(), owner=owner, job_id=job_id)  # 404 before streaming
    since = (int_param("Last-Event-ID", request.headers.get("Last-Event-ID"), default=0)
             or int_param("since", request.args.get("since"), default=0))
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    st = state()
    stream = events.stream(st.feed, st.settings, job_id, since, token=g.get("token"), owner=owner)
    return Response(stream, mimetype="text/event-stream", headers=headers)


@bp.get("/jobs/<job_id>/model")
def get_model(job_id: str):
    """The model file as an attachment named after the job: the backend's own file with its format's extension,
    or (`format=onnx`) one ONNX graph with the scaling inside."""
    wanted = model_export.requested_format(request.args.get("format"))
    db = session()
    job = repo.get_job(session=db, owner=user_id(), job_id=job_id)
    if job.status != SUCCEEDED:
        raise no_model(job.status)
    data, fmt = repo.get_model(session=db, owner=user_id(), job_id=job_id)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", job.name or "").strip("._") or job.id  # a header-safe name
    if wanted == "onnx":
        db.close()  # the file is in memory; free the connection before the conversion
        data, fmt = offload(model_export.onnx_model, data, stem), "onnx"
    filename = f"{stem}.{EXTENSIONS.get(fmt, fmt)}"
    return Response(data, mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/jobs/<job_id>/confusion-matrix")
def get_confusion_matrix(job_id: str):
    """One split's confusion matrix (`split`: train, val or test, default test), rows true and columns predicted
    classes in the order of predict's `classes`."""
    split = request.args.get("split", "test")
    if split not in matrices.SPLITS:
        raise invalid([{"loc": "split", "msg": f"unknown split {split!r}; valid: {', '.join(matrices.SPLITS)}"}])
    db = session()
    matrix = repo.get_confusion_matrix(session=db, owner=user_id(), job_id=job_id, split=split)
    db.close()
    return Response(offload(matrix_json, split, matrix), mimetype="application/json")


def matrix_json(split: str, matrix: np.ndarray, block: int = 256) -> str:
    """`{"split", "n_classes", "matrix"}` as JSON text, written a block of rows at a time (k × k ints as Python
    lists would take 5 times the memory of the text)."""
    rows = (",".join(f"[{','.join(map(str, row))}]" for row in matrix[start:start + block].tolist())
            for start in range(0, len(matrix), block))
    return f'{{"split":{dumps(split)},"n_classes":{len(matrix)},"matrix":[{",".join(rows)}]}}'


@bp.post("/jobs/<job_id>/predict")
def predict(job_id: str):
    """Raw feature rows → original labels (or numbers) and class probabilities."""
    db, owner, st = session(), user_id(), state()
    job = repo.get_job(session=db, owner=owner, job_id=job_id)
    if job.status != SUCCEEDED:
        raise no_model(job.status)
    ensure_kept(job, "model")  # 410 once retention purged it (this process may still hold it in its cache)
    body = offload(parse_json, request.get_data(), st.settings, what='a JSON object {"inputs": [[...], ...]}')

    def load():  # once per process and job (a Keras file saved before its numpy copy existed imports TensorFlow)
        return offload(load_serving_predictor, repo.get_model(session=db, owner=owner, job_id=job_id)[0])

    predictor = st.predictors.get(job_id, load)
    db.close()  # the model is in memory; free the connection (and SQLite's lock) before computing
    x = offload(parse_inputs, body, n_features=predictor.preprocessing.n_features,
                max_rows=st.settings.max_predict_rows, outputs=outputs(predictor.preprocessing),
                max_values=st.settings.max_predict_values)
    body = offload(predict_body, predictor, x)
    return Response(offload(dumps, body), mimetype="application/json")  # up to ~20 MB of JSON: not in the loop
