"""Targets and outputs: class indices encoded for the output layer, and outputs decoded back (every backend).

One output unit encodes 2 classes as 0/1; k units encode k classes one-hot. A regression
target is its values, one column per output unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from trainyard.core.datasets.prepared import Preprocessing


def encode(y: np.ndarray, task: str, n_outputs: int, dtype) -> np.ndarray:
    """Targets `(n, n_outputs)` for the output layer: 0/1 for one unit, one-hot for k units, values for regression."""
    if task == "classification" and n_outputs > 1:
        onehot = np.zeros((len(y), n_outputs), dtype)
        onehot[np.arange(len(y)), np.asarray(y, dtype=np.int64)] = 1
        return onehot
    return np.asarray(y, dtype=dtype).reshape(len(y), n_outputs)


def decode(out: np.ndarray, task: str) -> np.ndarray:
    """Outputs → class indices (argmax, or > 0.5 for one unit as Keras's binary accuracy) or the values `(n, k)`."""
    if task != "classification":
        return out
    if out.shape[1] > 1:
        return out.argmax(axis=1)
    return (out[:, 0] > 0.5).astype(np.int64)


def values(out: np.ndarray) -> np.ndarray:
    """Regression predictions as returned to users: `(n,)` for one output, else `(n, k)`."""
    return out[:, 0] if out.shape[1] == 1 else out


def probabilities(out: np.ndarray) -> np.ndarray:
    """Class probabilities `(n, k)`, k ≥ 2: one unit p gives `[1 - p, p]`; k units are clipped at 0 and normalised.

    A softmax output passes through; a sigmoid or linear output trained with squared error (legal for
    classification) can leave [0, 1] or not sum to 1, and probabilities must do both.
    """
    if out.shape[1] == 1:
        p = np.clip(out[:, 0], 0.0, 1.0)  # a step unit gives hard 0/1
        return np.stack([1 - p, p], axis=1)
    out = np.clip(out, 0.0, None)
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.full_like(out, 1.0 / out.shape[1]), where=total > 0)


class OutputPredictor:
    """`predict` / `predict_proba` on raw inputs for a model that gives its output layer's activations.

    A subclass sets `preprocessing` and implements `_forward(scaled) -> (n, n_outputs)`.
    """

    preprocessing: Preprocessing

    def _forward(self, scaled: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """The output layer's activations in inference mode for raw (unscaled) inputs, `(n, n_outputs)`."""
        x = np.asarray(x, dtype=np.float64)
        n = self.preprocessing.n_features
        if x.ndim != 2 or x.shape[1] != n:
            raise ValueError(f"inputs must be rows of {n} numbers")
        return self._forward(self.preprocessing.transform(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Original labels (classification), values `(n,)` for one regression output, else `(n, n_outputs)`."""
        out = self.outputs(x)
        if self.preprocessing.task == "classification":
            return np.asarray(self.preprocessing.classes)[decode(out, "classification")]
        return values(out)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """`(n, k)` class probabilities, k ≥ 2 (see `probabilities`)."""
        if self.preprocessing.task != "classification":
            raise ValueError("probabilities exist for classification models only")
        return probabilities(self.outputs(x))
