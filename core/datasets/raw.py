"""`RawData` (a dataset as loaded, before splitting), `Scanned` (an upload checked without keeping its rows),
the checks every loader shares, and `describe`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from trainyard.core.datasets.catalog import DatasetInfo
from trainyard.core.datasets.targets import TASKS, TargetScan, check_finite, check_layout, decode_labels, infer_task
from trainyard.core.errors import DatasetError

__all__ = ["TASKS", "MIN_SAMPLES", "DEFAULT_SEED", "RawData", "Scanned", "infer_task", "check_shapes", "make_raw",
           "feature_names_or_default", "target_names_or_default", "describe"]

# As few rows as a logic gate's truth table; fewer cannot be trained and evaluated sensibly.
MIN_SAMPLES = 4
# The split and generation seed of a DatasetSpec built without a JobSpec to fill its seed in.
DEFAULT_SEED = 0


@dataclass
class RawData:
    """A dataset as loaded: numeric features `(n, f)` in the dtype they came in (uint8 pixels stay uint8;
    `prepare` makes the float64 copy training needs) and targets as they came (ints, floats or strings)."""

    x: np.ndarray
    y: np.ndarray  # (n,) or, for regression, (n, n_targets)
    task: str  # "classification" | "regression"
    feature_names: list[str]
    target_names: list[str]

    @property
    def n_samples(self) -> int:
        return self.x.shape[0]

    @property
    def n_features(self) -> int:
        return self.x.shape[1]

    @property
    def n_targets(self) -> int:
        return 1 if self.y.ndim == 1 else self.y.shape[1]

    def classes(self) -> np.ndarray | None:
        """The sorted class labels (None for regression)."""
        return np.unique(self.y) if self.task == "classification" else None


@dataclass
class Scanned:
    """A dataset file read through once and checked as `make_raw` checks, its rows not kept: what the API
    needs to store an upload (shapes, task, names, classes) in memory that does not grow with the rows."""

    n_samples: int
    n_features: int
    task: str
    feature_names: list[str]
    target_names: list[str]
    class_labels: np.ndarray | None  # sorted; None for regression
    n_targets: int = 1

    def classes(self) -> np.ndarray | None:
        return self.class_labels


def check_shapes(x_shape: tuple[int, ...], x_dtype: np.dtype, y_shape: tuple[int, ...]) -> None:
    """What the shapes and the feature type alone rule out (known from a header, before any data is read)."""
    if len(x_shape) != 2:
        raise DatasetError(f"features must be a 2-D array (samples, features); got shape {x_shape}")
    if x_dtype.kind not in "biuf":
        raise DatasetError(f"features must be numbers, not {x_dtype}")
    if len(y_shape) not in (1, 2) or y_shape[0] != x_shape[0]:
        raise DatasetError(f"{x_shape[0]} feature rows but the target has shape {y_shape}; give one target per row")
    if x_shape[0] < MIN_SAMPLES:
        raise DatasetError(f"{x_shape[0]} samples is too few; a dataset needs at least {MIN_SAMPLES}")
    if x_shape[1] == 0:
        raise DatasetError("the dataset has no feature columns")


def feature_names_or_default(names: Sequence[str] | None, n_features: int) -> list[str]:
    return list(names) if names is not None else [f"x{i}" for i in range(n_features)]


def target_names_or_default(names: Sequence[str] | None, y_shape: tuple[int, ...]) -> list[str]:
    n_targets = 1 if len(y_shape) == 1 else y_shape[1]
    if names is not None:
        return list(names)
    return ["y"] if n_targets == 1 else [f"y{i}" for i in range(n_targets)]


def make_raw(x: np.ndarray, y: np.ndarray, *, task: str | None, feature_names: Sequence[str] | None = None,
             target_names: Sequence[str] | None = None) -> RawData:
    """Check loaded arrays (shape, finiteness, labels) and build `RawData`; the task is inferred unless given."""
    x = np.asarray(x)
    y = np.asarray(y)
    check_shapes(x.shape, x.dtype, y.shape)
    features = feature_names_or_default(feature_names, x.shape[1])
    targets = target_names_or_default(target_names, y.shape)
    task = task or infer_task(y)
    check_layout(y.shape, y.dtype, task)  # what the header says comes first, as in scan_file
    check_finite(x, features, "column")
    scan = TargetScan(task)
    scan.add_values(y)
    scan.finish(targets, y.shape)
    if task == "classification":
        y = decode_labels(y.reshape(len(y)))
    else:
        y = y.astype(np.float64, copy=False)
    return RawData(x=x, y=y, task=task, feature_names=features, target_names=targets)


def describe(data: RawData | Scanned) -> DatasetInfo:
    """The catalog facts about a loaded or scanned dataset: what specs are checked against."""
    n, f = data.n_samples, data.n_features
    if data.task == "classification":
        return DatasetInfo("classification", f, n_classes=len(data.classes()), n_samples=n)
    return DatasetInfo("regression", f, n_samples=n, n_targets=data.n_targets)
