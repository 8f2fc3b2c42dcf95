"""What `prepare` makes and every backend trains on: `PreparedData` (the splits, scaled) and its `Preprocessing`.

`Preprocessing` is saved in every model file, so a predictor scales new inputs and decodes its outputs
exactly as training did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Preprocessing:
    """What turns raw inputs into the network's inputs and its outputs back into labels; saved in model files."""

    task: str  # "classification" | "regression"
    n_features: int
    classes: list | None = None  # original labels, index i ↔ class i (JSON scalars)
    scaler: str | None = None  # None | "standard" | "minmax"
    offset: list[float] | None = None  # x_scaled = (x - offset) / scale, per column
    scale: list[float] | None = None
    feature_names: list[str] | None = None
    target_names: list[str] | None = None  # regression outputs

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(**d)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale raw inputs as the training split was scaled."""
        if self.scaler is None:
            return x
        return (x - np.asarray(self.offset, dtype=x.dtype)) / np.asarray(self.scale, dtype=x.dtype)


@dataclass
class PreparedData:
    """A dataset split and scaled for training.

    `x_*` are float arrays `(n, n_features)`, already scaled. For classification `y_*`
    are int64 class indices into `preprocessing.classes`; for regression float arrays
    `(n,)` or `(n, n_targets)`. Empty splits are arrays with 0 rows.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    preprocessing: Preprocessing

    @property
    def task(self) -> str:
        return self.preprocessing.task

    @property
    def n_classes(self) -> int | None:
        classes = self.preprocessing.classes
        return None if classes is None else len(classes)
