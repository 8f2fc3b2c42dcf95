"""GET /jobs/{id}/decision-boundary: a two-feature job's model evaluated over a grid of the input plane, with its
training points — what the dashboard draws as the decision boundary (TensorFlow Playground's picture).

The model is the finished one (`source: "model"`) or, while a numpy job trains, its latest checkpoint
(`source: "checkpoint"`): the network is rebuilt from the spec, the checkpoint's weights loaded, and the
dataset's scaling fitted as training fitted it. The grid is `size` × `size` points (at most MAX_SIZE²) spanning the
training points with a margin; at most MAX_POINTS training points come back (an even sample).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from flask import Blueprint, Response
from pydantic import Field

from trainyard.api.context import session, state
from trainyard.api.errors import ApiError
from trainyard.api.jsonio import dumps
from trainyard.api.offload import offload
from trainyard.api.params import int_param
from trainyard.api.schemas import _Out
from trainyard.core.datasets.upload import Upload
from trainyard.store import jobs as repo
from trainyard.store.models import RUNNING, SUCCEEDED, Dataset
from trainyard.store.retention import ensure_kept

bp = Blueprint("boundary", __name__)
MIN_SIZE, MAX_SIZE, DEFAULT_SIZE = 10, 200, 60
MAX_POINTS = 2000
JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}


class _Data:
    """A job's raw two-feature dataset and its prepared form, kept per job (a few) by this process."""

    def __init__(self, size: int = 8):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key: str, load) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


DATA = _Data()
CHECKPOINTS = _Data(size=8)  # (job id, epoch) → predictor


def _conflict(detail: str) -> ApiError:
    return ApiError(409, detail, kind="conflict")


def _load_data(spec_doc: dict, upload: tuple | None):
    from trainyard.core import datasets
    from trainyard.core.spec.checks import finalize_spec
    from trainyard.core.validate import validate_spec

    spec = validate_spec(spec_doc)
    raw = datasets.load(spec.dataset, upload=upload)
    finalize_spec(spec, datasets.describe(raw))
    return spec, raw


def _upload(job) -> Upload | None:
    if not job.dataset_id:
        return None
    from trainyard.store.datasets import dataset_bytes

    ds = session().get(Dataset, job.dataset_id)
    if ds is None:
        raise _conflict("the job's dataset was deleted")
    data, labels = dataset_bytes(session=session(), dataset=ds)
    return Upload(data, ds.format, ds.target, ds.task, labels)


def _checkpoint_predictor(spec, raw, blob: bytes):
    from trainyard.core import datasets
    from trainyard.core.checkpoint import load_checkpoint
    from trainyard.core.modelfile import load_model, save_model
    from trainyard.core.provenance import versions
    from trainyard.core.spec import normalised
    from trainyard.core.training import Trainer

    data = datasets.prepare(raw, spec.dataset)
    trainer = Trainer(spec, data, None, np.dtype(spec.backend_options.get("dtype", "float32")))
    load_checkpoint(blob, trainer)
    return load_model(save_model(trainer.network, normalised(spec), data.preprocessing, versions()))


def grid_body(predictor, raw, size: int) -> dict:
    """The grid's axes and values, and the (sampled) training points."""
    x = np.asarray(raw.x, dtype=np.float64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    margin = np.maximum((hi - lo) * 0.15, 0.25)
    xs, ys = (np.linspace(lo[i] - margin[i], hi[i] + margin[i], size) for i in range(2))
    gx, gy = np.meshgrid(xs, ys)  # row i: y = ys[i]
    plane = np.column_stack([gx.ravel(), gy.ravel()])
    pre = predictor.preprocessing
    if pre.task == "classification":
        proba = np.asarray(predictor.predict_proba(plane), dtype=np.float64)
        classes = [str(c) for c in pre.classes]
        if proba.shape[1] == 2:
            z, label, zrange = proba[:, 1], f"P({classes[1]})", (0.0, 1.0)
        else:
            z, label, zrange = proba.argmax(axis=1).astype(np.float64), "predicted class", (0.0, len(classes) - 1.0)
    else:
        z = np.asarray(predictor.predict(plane), dtype=np.float64).reshape(len(plane), -1)[:, 0]
        label, zrange, classes = "prediction", (float(np.nanmin(z)), float(np.nanmax(z))), None
    step = max(1, len(x) // MAX_POINTS)
    labels = np.asarray(raw.y)[::step]
    if labels.ndim > 1:
        labels = labels[:, 0]
    return {"x": xs.tolist(), "y": ys.tolist(), "z": np.round(z.reshape(size, size), 5).tolist(),
            "zmin": zrange[0], "zmax": zrange[1], "label": label, "classes": classes,
            "features": list(raw.feature_names[:2]) if raw.feature_names else ["x0", "x1"],
            "points": {"x": x[::step, 0].tolist(), "y": x[::step, 1].tolist(), "label": [str(v) for v in labels]}}


@bp.get("/jobs/<job_id>/decision-boundary")
def get_decision_boundary(job_id: str):
    """The model's output over a `size`² grid of a two-feature job's input plane and its training points."""
    from trainyard.core.backends import load_serving_predictor
    from trainyard.store.runs import latest_checkpoint

    size = int_param("size", _arg("size"), default=DEFAULT_SIZE, minimum=MIN_SIZE, maximum=MAX_SIZE)
    db, owner, st = session(), _owner(), state()
    job = repo.get_job(session=db, owner=owner, job_id=job_id)
    if job.status == SUCCEEDED:
        ensure_kept(job, "model")
        predictor = st.predictors.get(job.id, lambda: offload(load_serving_predictor,
                                                               repo.get_model(session=db, owner=owner, job_id=job.id)[0]))
        if predictor.preprocessing.n_features != 2:
            raise _conflict(f"the job's model has {predictor.preprocessing.n_features} features; a decision boundary "
                            "is drawn for 2")
        source, epoch = "model", job.epoch or 0
        _, raw = DATA.get(job.id, lambda: offload(_load_data, job.spec, _upload(job)))
    elif job.status == RUNNING:
        found = latest_checkpoint(session=db, job_id=job.id)
        if found is None:
            raise _conflict("the job has no checkpoint yet; the boundary is drawn from the latest checkpoint while "
                            "it trains and from its model when it succeeds")
        epoch, blob = found
        spec, raw = DATA.get(job.id, lambda: offload(_load_data, job.spec, _upload(job)))
        if raw.x.shape[1] != 2:
            raise _conflict(f"the job's dataset has {raw.x.shape[1]} features; a decision boundary is drawn for 2")
        if spec.backend != "numpy":
            raise _conflict(f"only numpy jobs keep checkpoints; a {spec.backend} job's boundary comes with its model")
        predictor = CHECKPOINTS.get(f"{job.id}:{epoch}", lambda: offload(_checkpoint_predictor, spec, raw, blob))
        source = "checkpoint"
    else:
        raise _conflict(f"job {job.id} is {job.status}: a boundary needs its model or a checkpoint")
    db.close()
    body = offload(grid_body, predictor, raw, size)
    return Response(offload(dumps, {**body, "source": source, "epoch": epoch}), mimetype="application/json")


def _arg(name: str) -> str | None:
    from flask import request

    return request.args.get(name)


def _owner() -> str:
    from trainyard.api.auth import user_id

    return user_id()


class BoundaryPoints(_Out):
    x: list[float]
    y: list[float]
    label: list[str]


class DecisionBoundary(_Out):
    x: list[float] = Field(description="the grid's first-feature values (columns)")
    y: list[float] = Field(description="the grid's second-feature values (rows)")
    z: list[list[float | None]] = Field(description="z[i][j]: the model's output at (x[j], y[i]): the probability "
                                                    "of the second class (binary), the predicted class index "
                                                    "(more classes) or the prediction (regression)")
    zmin: float
    zmax: float
    label: str
    classes: list[str] | None
    features: list[str]
    points: BoundaryPoints
    source: str = Field(description="`model` (finished) or `checkpoint` (while a numpy job trains)")
    epoch: int


ROUTES = {
    "/jobs/{job_id}/decision-boundary": {
        "get": ("A two-feature job's model (or latest checkpoint while it trains) over a grid of the input plane, "
                "with its training points", None,
                {200: "DecisionBoundary", 401: "Problem", 404: "Problem", 409: "Problem", 422: "Problem"},
                {"parameters": [JOB_ID, {"name": "size", "in": "query",
                                         "schema": {"type": "integer", "minimum": MIN_SIZE, "maximum": MAX_SIZE,
                                                    "default": DEFAULT_SIZE},
                                         "description": "grid points per axis"}]}),
    },
}


def document(routes: dict, models: list) -> None:
    """Add the route and its models to api.openapi's."""
    routes.update(ROUTES)
    models += [m for m in (BoundaryPoints, DecisionBoundary) if m not in models]
