"""/datasets: multipart upload (checked by core.datasets.scan_file before it is stored), list, read, delete."""

from __future__ import annotations

from flask import Blueprint, request

from trainyard.api import views
from trainyard.api.context import session, state, writing
from trainyard.api.auth import user_id
from trainyard.api.offload import offload
from trainyard.api.errors import ApiError, invalid
from trainyard.api.limits import class_count_errors
from trainyard.api.jsonio import bad_text
from trainyard.core import datasets as loaders
from trainyard.core.errors import DatasetError
from trainyard.store import datasets as repo

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


def _extras(scanned: loaders.Scanned) -> dict:
    """What else is worth keeping: class labels (when few), feature and target names."""
    info = {"feature_names": list(scanned.feature_names), "target_names": list(scanned.target_names)}
    classes = scanned.classes()
    if classes is not None and len(classes) <= MAX_CLASSES_KEPT:
        info["classes"] = classes.tolist()
    return info


def _check_quota(size: int, settings, db=None) -> None:
    """413 when this upload would take the caller's stored datasets past `max_dataset_bytes_per_user` (checked
    before the file is parsed, so refusing costs no parsing, and again in the write that stores it)."""
    used = repo.stored_bytes(session=db or session(), owner=user_id())
    limit = settings.max_dataset_bytes_per_user
    if used + size > limit:
        raise ApiError(413, f"your datasets hold {used:,} bytes; this upload of {size:,} bytes would take them past "
                            f"the limit of {limit:,} bytes (max_dataset_bytes_per_user): delete some first",
                       kind="quota-exceeded")


def _limits(settings) -> loaders.Limits:
    """What one upload may inflate to and hold, checked from headers and while streaming, before anything is kept."""
    return loaders.Limits(max_bytes=settings.max_decompressed_bytes, max_cells=settings.max_samples_x_features,
                          max_features=settings.max_features, bytes_setting="max_decompressed_bytes",
                          cells_setting="max_samples_x_features", features_setting="max_features")


@bp.post("/datasets")
def upload_dataset():
    """201 with the stored dataset; 413 over max_upload_bytes or max_dataset_bytes_per_user, 415 if not multipart,
    422 if it cannot be used (a limit passed while it is read included)."""
    data, labels = _read_upload()
    name = _form_value("name", required=True)
    fmt = _form_value("format", FORMATS, required=True)
    target, task = _form_value("target"), _form_value("task", TASKS)
    if fmt == "idx" and labels is None:
        raise invalid([{"loc": "labels", "msg": "an IDX upload needs its labels file as the 'labels' part"}])
    settings = state().settings
    _check_quota(len(data) + len(labels or b""), settings)
    try:
        # Checked in bounded memory, rows not kept: the API needs shapes, task, names and classes (core.datasets.scan).
        scanned = offload(loaders.scan_file, data, fmt, target=target, task=task, labels=labels,
                          limits=_limits(settings))
    except DatasetError as exc:
        raise invalid([{"loc": "file", "msg": exc.message}]) from None
    info = loaders.describe(scanned)
    if errors := class_count_errors(info.n_classes, settings, "file"):
        raise invalid(errors)
    with writing() as db:
        _check_quota(len(data) + len(labels or b""), settings, db)  # concurrent uploads: checked where they store
        ds = repo.create_dataset(session=db, owner=user_id(), name=name, format=fmt, data=data, task=info.task,
                                 n_samples=info.n_samples, n_features=info.n_features, n_classes=info.n_classes,
                                 n_targets=info.n_targets, target=target if fmt == "csv" else None, labels=labels,
                                 info=_extras(scanned))
    body = views.dataset_body(ds)
    return body, 201, {"Location": body["links"]["self"]}


@bp.get("/datasets")
def list_datasets():
    """The caller's datasets, newest first."""
    return {"items": [views.dataset_summary(d) for d in repo.list_datasets(session=session(), owner=user_id())]}


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
