"""The backend interface: train(spec, data, callbacks) -> TrainResult and load(bytes) -> Predictor."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from trainyard.core.spec import JobSpec


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


@dataclass
class Callbacks:
    """Hooks a backend calls while training; every one optional.

    `on_epoch(row)` gets each history row as it is made. `check()` is called between
    mini-batches (or epochs, where a library offers no finer hook) and raises
    `Cancelled` / `TimedOut` to stop training. `on_checkpoint(epoch, state)` gets a
    resumable state every `training.checkpoint_every` epochs and, with `every_seconds`, once that long has passed
    since the last one (the worker's `checkpoint_seconds`); passing that state back
    as `resume` continues from that epoch. `want_checkpoint()` is asked before a due
    checkpoint is made (making one copies every weight): False skips it, except at the
    last epoch (the worker's bytes-per-minute budget, `core.checkpoint.CheckpointBudget`).
    """

    on_epoch: Callable[[dict], None] | None = None
    check: Callable[[], None] | None = None
    on_checkpoint: Callable[[int, bytes], None] | None = None
    resume: bytes | None = None
    want_checkpoint: Callable[[], bool] | None = None
    every_seconds: float | None = None  # also checkpoint once this long has passed since the last one (or the start)
    clock: Callable[[], float] = time.monotonic
    _since: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._since = self.clock()  # training time counts from here: the first time-based checkpoint is due then

    def checkpoint_due(self, epoch: int, every: int | None, epochs: int) -> bool:
        """Whether to make a checkpoint after `epoch` (1-based) of `epochs`: every `every` epochs, or once
        `every_seconds` have passed since the last checkpoint (not at the last epoch: the job ends there), as
        allowed."""
        if not self.on_checkpoint:
            return False
        now = self.clock()
        since = self._since if self._since is not None else now
        by_epoch = bool(every and epoch % every == 0)
        by_time = bool(self.every_seconds and epoch < epochs and now - since >= self.every_seconds)
        if not (by_epoch or by_time):
            return False
        if epoch == epochs or self.want_checkpoint is None or self.want_checkpoint():
            self._since = now
            return True
        return False


@dataclass
class TrainResult:
    history: list[dict]  # one row per epoch: epoch, loss, <metric>, val_loss, val_<metric>, time
    metrics: dict[str, Any]  # final model in inference mode on train / val_ / test_ splits
    model: bytes  # the model file, self-contained (weights, normalised spec, preprocessing)
    format: str  # "npz" | "skops" | "keras"
    stopped_early: bool = False
    versions: dict[str, str] = field(default_factory=dict)


class Predictor(Protocol):
    preprocessing: Preprocessing
    spec: dict

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw (unscaled) inputs → original labels (classification) or values (regression)."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Raw inputs → class probabilities `(n, k)`, k ≥ 2 (classification only)."""


class Backend(Protocol):
    name: str
    model_format: str

    def check(self, spec: JobSpec) -> list[dict]:
        """What this backend cannot express in `spec`, as `{"loc", "msg"}` errors; fills its own defaults."""

    def train(self, spec: JobSpec, data: PreparedData, callbacks: Callbacks) -> TrainResult:
        """Train and evaluate; raises Diverged / Cancelled / TimedOut."""

    def load(self, model: bytes) -> Predictor:
        """Rebuild a predictor from a model file, never unpickling anything."""
