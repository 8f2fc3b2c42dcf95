"""Datasets: builtins and uploaded files loaded into `RawData`, then split, scaled and encoded by `prepare`.

    raw = load(spec.dataset, upload=...)    # or load_builtin / load_file / load_path
    info = describe(raw)                    # checked against the spec (core.spec.finalize_spec)
    data = prepare(raw, spec.dataset)       # PreparedData for a backend

    scanned = scan_file(data, "csv", limits=Limits(max_cells=...))   # the API: checked, rows not kept
    info = describe(scanned)

`PreparedData` and its `Preprocessing` (core.datasets.prepared) are what every backend trains on; `Upload`
(core.datasets.upload) is a stored upload as the worker hands it over.

`trainyard.core.spec` imports `trainyard.core.datasets.catalog`, which runs this file first: so no module of this package
imports `trainyard.core.spec` at run time (their `DatasetSpec` annotations are imported for type checkers only), and
scikit-learn is imported inside the functions that use it. No module is named after an exported function:
importing it would shadow the function on the package.
"""

from trainyard.core.datasets.builtin import MNIST_ENV, load_builtin
from trainyard.core.datasets.limits import DEFAULT_MAX_BYTES, Limits
from trainyard.core.datasets.loaders import load, load_file, load_path
from trainyard.core.datasets.prepared import PreparedData, Preprocessing
from trainyard.core.datasets.preprocess import fit_scaler, prepare, split_rows
from trainyard.core.datasets.raw import RawData, Scanned, describe, infer_task, make_raw
from trainyard.core.datasets.scan import scan_file
from trainyard.core.datasets.upload import Upload

__all__ = ["DEFAULT_MAX_BYTES", "Limits", "MNIST_ENV", "PreparedData", "Preprocessing", "RawData", "Scanned", "Upload",
           "describe", "fit_scaler", "infer_task", "load", "load_builtin", "load_file", "load_path", "make_raw",
           "prepare", "scan_file", "split_rows"]
