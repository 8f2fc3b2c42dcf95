"""The backend interface: train(spec, data, callbacks) -> TrainResult and load(bytes) -> Predictor.

What a backend trains on (`PreparedData`, `Preprocessing`) lives with the datasets that make it
(core.datasets.prepared), and how it reports (`Callbacks`) in core.callbacks; `TrainResult` is what
`train` returns, so it stays here with the interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from trainyard.core.callbacks import Callbacks
from trainyard.core.datasets.prepared import PreparedData, Preprocessing
from trainyard.core.spec import JobSpec


@dataclass
class TrainResult:
    """What `Backend.train` returns: the history, the final metrics and the model file."""

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
        """What this backend cannot express in `spec`, as `{"loc", "msg"}` errors; only checks (the backend's defaults
        are filled before, by step 2 of core/spec/defaults.py)."""

    def train(self, spec: JobSpec, data: PreparedData, callbacks: Callbacks) -> TrainResult:
        """Train and evaluate; raises Diverged / Cancelled / TimedOut."""

    def load(self, model: bytes) -> Predictor:
        """Rebuild a predictor from a model file, never unpickling anything."""
