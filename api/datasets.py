"""/datasets: multipart upload (validated with core.datasets' loaders before it is stored), list, read, delete."""

from __future__ import annotations

import numpy as np
from flask import Blueprint, request

from api import views
from api.context import session, state, writing
from api.auth import user_id
from api.errors import ApiError, invalid
from api.limits import class_count_errors
from api.jsonio import bad_text
from core import datasets as loaders
from core.errors import DatasetError
from store import datasets as repo

bp = Blueprint("datasets", __name__)
FORMATS = ("csv", "npz", "idx")
TASKS = ("classification", "regression")
MAX_TEXT = 200  # name and target columns are stored as String(200)
MAX_CLASSES_KEPT = 1000  # class labels stored with the dataset for display


def _form_value(name: str, choices: tuple[str, ...] | None = None, required: bool = False) -> str | None:
    value = (request.form.get(name) or "").strip() or None
    if value is None and required:
        raise invalid([{"loc": name, "msg": "required"}])
    if value is not None and len(value) > MAX_TEXT:
        raise invalid([{"loc": name, "msg": f"at most {MAX_TEXT} characters"}])
    if value is not None and (why := bad_text(value)):
        raise invalid([{"loc": name, "msg": why}])
    if value is not None and choices is not None and value.lower() not in choices:
        raise invalid([{"loc": name, "msg": f"{value!r} is not one of {', '.join(choices)}"}])
    return value.lower() if value is not None and choices is not None else value


def _read_upload() -> tuple[bytes, bytes | None]:
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, f"upload a dataset as multipart/form-data (file, name, format, target), "
                            f"not {request.mimetype or 'no content type'}", kind="unsupported-media-type")
    upload = request.files.get("file")
    if upload is None:
        raise invalid([{"loc": "file", "msg": "required: the dataset file"}])
    labels = request.files.get("labels")
    return upload.read(), labels.read() if labels is not None else None


def _extras(raw) -> dict:
    """What else is worth keeping: class labels (when few), feature and target names."""
    info = {"feature_names": list(raw.feature_names), "target_names": list(raw.target_names)}
    if raw.task == "classification":
        classes = np.unique(raw.y)
        if len(classes) <= MAX_CLASSES_KEPT:
            info["classes"] = classes.tolist()
    return info


@bp.post("/datasets")
def upload_dataset():
    """201 with the stored dataset; 413 over max_upload_bytes, 415 if not multipart, 422 if it cannot be used."""
    data, labels = _read_upload()
    name = _form_value("name", required=True)
    fmt = _form_value("format", FORMATS, required=True)
    target, task = _form_value("target"), _form_value("task", TASKS)
    if fmt == "idx" and labels is None:
        raise invalid([{"loc": "labels", "msg": "an IDX upload needs its labels file as the 'labels' part"}])
    settings = state().settings
    try:
        raw = loaders.load_file(data, fmt, target=target, task=task, labels=labels,
                                max_bytes=4 * settings.max_upload_bytes)
    except DatasetError as exc:
        raise invalid([{"loc": "file", "msg": exc.message}]) from None
    info = loaders.describe(raw)
    if info.n_samples * info.n_features > settings.max_samples_x_features:
        raise invalid([{"loc": "file", "msg": f"{info.n_samples:,} samples x {info.n_features} features is over the "
                                              f"limit of {settings.max_samples_x_features:,} (max_samples_x_features)"}])
    if errors := class_count_errors(info.n_classes, settings, "file"):
        raise invalid(errors)
    with writing() as db:
        ds = repo.create_dataset(session=db, owner=user_id(), name=name, format=fmt, data=data, task=info.task,
                                 n_samples=info.n_samples, n_features=info.n_features, n_classes=info.n_classes,
                                 n_targets=info.n_targets, target=target if fmt == "csv" else None, labels=labels,
                                 info=_extras(raw))
    body = views.dataset_body(ds)
    return body, 201, {"Location": body["links"]["self"]}


@bp.get("/datasets")
def list_datasets():
    """The caller's datasets, newest first."""
    return {"items": [views.dataset_body(d) for d in repo.list_datasets(session=session(), owner=user_id())]}


@bp.get("/datasets/<dataset_id>")
def get_dataset(dataset_id: str):
    """One dataset."""
    return views.dataset_body(repo.get_dataset(session=session(), owner=user_id(), dataset_id=dataset_id))


@bp.delete("/datasets/<dataset_id>")
def delete_dataset(dataset_id: str):
    """204; 409 while a queued or running job uses it."""
    with writing() as db:
        repo.delete_dataset(session=db, owner=user_id(), dataset_id=dataset_id)
    return "", 204
