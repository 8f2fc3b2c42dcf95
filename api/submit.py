"""Submitting a spec: refuse `path`, validate against the dataset, apply the limits of DESIGN §7 (api/limits.py)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from trainyard.api.offload import offload
from trainyard.api.errors import ApiError, invalid_spec
from trainyard.api.jsonio import non_finite
from trainyard.api.limits import layer_count_errors, spec_limit_errors
from trainyard.api.logtext import one_line
from trainyard.core.datasets.catalog import DatasetInfo
from trainyard.core.spec import JobSpec, builtin_info
from trainyard.core.validate import validate_spec
from trainyard.store.datasets import get_dataset
from trainyard.store.errors import NotFound
from trainyard.store.jobs import count_queued_jobs
from trainyard.store.settings import Settings

log = logging.getLogger(__name__)


def _dataset_info(doc: dict, *, db: Session, owner: str) -> DatasetInfo | None:
    """The stored facts of an uploaded dataset the document names by id (422 if the caller has none such)."""
    dataset = doc.get("dataset")
    if not isinstance(dataset, dict):
        return None
    if dataset.get("path") is not None:  # a normalised spec carries "path": null
        raise invalid_spec([{"loc": "dataset.path", "msg": "a server never opens a file a client names; upload it "
                                                      "(POST /api/v1/datasets) and use {\"id\": ...}"}])
    ident = dataset.get("id")
    if not isinstance(ident, str):
        return None
    try:
        ds = get_dataset(session=db, owner=owner, dataset_id=ident)
    except NotFound:
        raise invalid_spec([{"loc": "dataset.id", "msg": f"no dataset with id {ident!r}"}]) from None
    return DatasetInfo(ds.task, ds.n_features, ds.n_classes, ds.n_samples, ds.n_targets)


def validate_submission(doc: Any, *, db: Session, owner: str, settings: Settings) -> JobSpec:
    """A checked, normalised spec for this owner, or a 422 whose `errors` name each field."""
    if not isinstance(doc, dict):
        raise invalid_spec([{"loc": "", "msg": "the body must be a JSON object (a job spec)"}])
    errors = layer_count_errors(doc, settings)  # first: the cost of every later check grows with the layers
    if errors:
        raise invalid_spec(errors)
    bad = non_finite(doc)
    if bad:
        raise invalid_spec([{"loc": loc, "msg": "not a finite number (NaN and Infinity are not allowed)"} for loc in bad])
    info = _dataset_info(doc, db=db, owner=owner)
    try:
        spec = offload(validate_spec, doc, info)  # SpecError → 422 with field paths
    except (TypeError, KeyError, AttributeError) as exc:
        # A validator that met a value of a type it did not expect (e.g. {"name": {}}): still the client's input.
        log.warning("spec validation raised %s; answered 422", one_line(exc))  # one line: a client can repeat it
        raise invalid_spec([{"loc": "", "msg": f"the spec has a value of the wrong type ({exc})"}]) from None
    if spec.dataset.builtin == "mnist" and not settings.mnist_dir:
        raise invalid_spec([{"loc": "dataset.builtin", "msg": "mnist needs the four MNIST IDX files in a folder named "
                                                         "by TRAINYARD_MNIST_DIR, which this server does not set"}])
    errors = spec_limit_errors(spec, info or builtin_info(spec), settings)
    if errors:
        raise invalid_spec(errors)
    return spec


def check_queue_limit(*, db: Session, owner: str, settings: Settings, inserted: int = 0) -> None:
    """429 when the owner already has `max_queued_per_user` jobs queued, not counting the `inserted` job(s) that
    `db`'s transaction has just added (it is then rolled back)."""
    queued = count_queued_jobs(session=db, owner=owner) - inserted
    if queued >= settings.max_queued_per_user:
        raise ApiError(429, f"you have {queued} queued jobs; the limit is {settings.max_queued_per_user} "
                            "(max_queued_per_user): wait for some to start or cancel them",
                       kind="too-many-queued-jobs", headers={"Retry-After": "10"})
