"""`RawData` (a dataset as loaded, before splitting) with the checks every loader shares, and `describe`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.datasets.catalog import DatasetInfo
from core.errors import DatasetError

TASKS = ("classification", "regression")
# As few rows as a logic gate's truth table; fewer cannot be trained and evaluated sensibly.
MIN_SAMPLES = 4
# The split and generation seed of a DatasetSpec built without a JobSpec to fill its seed in.
DEFAULT_SEED = 0


@dataclass
class RawData:
    """A dataset as loaded: float64 features `(n, f)` and targets as they came (ints, floats or strings)."""

    x: np.ndarray
    y: np.ndarray  # (n,) or, for regression, (n, n_targets)
    task: str  # "classification" | "regression"
    feature_names: list[str]
    target_names: list[str]


def infer_task(y: np.ndarray) -> str:
    """Integers, booleans and strings are class labels; any other numbers are regression targets."""
    return "classification" if y.dtype.kind in "biuUS" else "regression"


def _check_finite(a: np.ndarray, names: Sequence[str], what: str) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad.reshape(len(a), -1))[0])
        raise DatasetError(f"{what} {names[col]!r}, row {row + 1}: {a.reshape(len(a), -1)[row, col]} "
                           "is not a finite number (NaN and infinity are not allowed)")


def _classification_targets(y: np.ndarray) -> np.ndarray:
    """Class labels as a 1-D array of ints, floats, bools or strings."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"classification needs one label per sample; the target has shape {y.shape}")
    if y.dtype.kind == "S":
        # Bytes labels would not be JSON scalars; decode them once here.
        try:
            y = np.char.decode(y, "utf-8")
        except UnicodeDecodeError:
            raise DatasetError("class labels must be UTF-8 text") from None
    if y.dtype.kind not in "biufU":
        raise DatasetError(f"class labels must be numbers or text, not {y.dtype}")
    n_classes = len(np.unique(y))
    if n_classes < 2:
        raise DatasetError(f"the target has only one class ({y[0]!r}); classification needs at least 2")
    return y


def make_raw(x: np.ndarray, y: np.ndarray, *, task: str | None, feature_names: Sequence[str] | None = None,
             target_names: Sequence[str] | None = None) -> RawData:
    """Check loaded arrays (shape, finiteness, labels) and build `RawData`; the task is inferred unless given."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2:
        raise DatasetError(f"features must be a 2-D array (samples, features); got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"features must be numbers, not {x.dtype}")
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise DatasetError(f"{len(x)} feature rows but the target has shape {y.shape}; give one target per row")
    if len(x) < MIN_SAMPLES:
        raise DatasetError(f"{len(x)} samples is too few; a dataset needs at least {MIN_SAMPLES}")
    if x.shape[1] == 0:
        raise DatasetError("the dataset has no feature columns")
    features = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(x.shape[1])]
    x = x.astype(np.float64, copy=False)
    _check_finite(x, features, "column")
    task = task or infer_task(y)
    if task not in TASKS:
        raise DatasetError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    n_targets = 1 if y.ndim == 1 else y.shape[1]
    targets = list(target_names) if target_names is not None else (
        ["y"] if n_targets == 1 else [f"y{i}" for i in range(n_targets)])
    if task == "classification":
        y = _classification_targets(y)
        if y.dtype.kind == "f":
            _check_finite(y, targets, "target column")
    else:
        if y.dtype.kind not in "biuf":
            raise DatasetError(f"regression targets must be numbers; this target holds {y.dtype} values "
                               "(state task 'classification' for class labels)")
        y = y.astype(np.float64, copy=False)
        _check_finite(y, targets, "target column")
    return RawData(x=x, y=y, task=task, feature_names=features, target_names=targets)


def describe(raw: RawData) -> DatasetInfo:
    """The catalog facts about a loaded dataset: what specs are checked against."""
    n, f = raw.x.shape
    if raw.task == "classification":
        return DatasetInfo("classification", f, n_classes=len(np.unique(raw.y)), n_samples=n)
    return DatasetInfo("regression", f, n_samples=n, n_targets=1 if raw.y.ndim == 1 else raw.y.shape[1])
