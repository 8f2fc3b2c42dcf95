"""One call that validates a spec document the way the API, the sweeps and `trainyard run` all do, once.

The order (core/spec/defaults.py says which defaults each step fills): parse and fill what needs
no data, let the backend check what it can express (it only checks), then check against the
dataset and fill what depends on it when the dataset is known. A worker re-reads the finished
spec with `trainyard.core.spec.read_spec` and validates nothing again.
"""

from __future__ import annotations

from typing import Any

from trainyard.core.backends import get_backend
from trainyard.core.datasets.catalog import DatasetInfo
from trainyard.core.errors import SpecError
from trainyard.core.spec import JobSpec, builtin_info, finalize_spec, parse_spec


def validate_spec(document: Any, info: DatasetInfo | None = None) -> JobSpec:
    """Parse, let the backend check what it can express, and check against the dataset when known.

    `info` describes an uploaded or local dataset; builtins are described by the catalog.
    Without either, the data-dependent checks wait until the data is loaded.
    """
    spec = parse_spec(document)
    errors = get_backend(spec.backend).check(spec)
    if errors:
        raise SpecError(errors)
    info = info or builtin_info(spec)
    if info is not None:
        finalize_spec(spec, info)
    return spec
