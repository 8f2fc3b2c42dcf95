"""Shared by the backend tests: a spec validated, finalised and its data prepared exactly as a job does it."""

from __future__ import annotations

from trainyard.core.datasets import describe, load, prepare
from trainyard.core.datasets.prepared import PreparedData
from trainyard.core.spec import JobSpec, finalize_spec
from trainyard.core.validate import validate_spec


def prepared(doc: dict) -> tuple[JobSpec, PreparedData]:
    """The spec as validated and finalised, and its dataset split and scaled."""
    spec = validate_spec(doc)
    raw = load(spec.dataset)
    finalize_spec(spec, describe(raw))
    return spec, prepare(raw, spec.dataset)
