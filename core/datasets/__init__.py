"""Datasets: builtins and uploaded files loaded into `RawData`, then split, scaled and encoded by `prepare`.

    raw = load(spec.dataset, upload=...)    # or load_builtin / load_file / load_path
    info = describe(raw)                    # checked against the spec (core.spec.finalize_spec)
    data = prepare(raw, spec.dataset)       # PreparedData for a backend

    scanned = scan_file(data, "csv", limits=Limits(max_cells=...))   # the API: checked, rows not kept
    info = describe(scanned)

`PreparedData` and its `Preprocessing` (core.datasets.prepared) are what every backend trains on; `Upload`
(core.datasets.upload) is a stored upload as the worker hands it over.

The names below are imported on first use: `core.spec` imports `core.datasets.catalog`,
which runs this file, and the loaders take `core.spec`'s types and import scikit-learn, so
importing them here would be circular and slow. No module is named after an exported
function: importing it would shadow the function on the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "RawData": "raw", "Scanned": "raw", "describe": "raw", "make_raw": "raw", "infer_task": "raw",
    "load_builtin": "builtin", "MNIST_ENV": "builtin",
    "load_file": "loaders", "load_path": "loaders", "load": "loaders", "scan_file": "scan",
    "prepare": "preprocess", "split_rows": "preprocess", "fit_scaler": "preprocess",
    "Limits": "limits", "DEFAULT_MAX_BYTES": "limits",
    "PreparedData": "prepared", "Preprocessing": "prepared", "Upload": "upload",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from trainyard.core.datasets.builtin import MNIST_ENV, load_builtin
    from trainyard.core.datasets.limits import DEFAULT_MAX_BYTES, Limits
    from trainyard.core.datasets.loaders import load, load_file, load_path
    from trainyard.core.datasets.prepared import PreparedData, Preprocessing
    from trainyard.core.datasets.preprocess import fit_scaler, prepare, split_rows
    from trainyard.core.datasets.raw import RawData, Scanned, describe, infer_task, make_raw
    from trainyard.core.datasets.scan import scan_file
    from trainyard.core.datasets.upload import Upload


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` when it is first asked for (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
