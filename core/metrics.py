"""Metrics: per-epoch accumulators fed from mini-batch outputs, and `evaluate` for final metrics.

Classification metrics are all derived from one confusion matrix, so an epoch's
accuracy/precision/recall/F1 cost one `bincount` per mini-batch (as Keras's stateful
metrics, no extra pass over the data). Regression metrics keep running sums, as
Keras's `R2Score` does. `evaluate` is the same accumulators used once.
"""

from __future__ import annotations

import math

import numpy as np

CLASSIFICATION = ("accuracy", "precision", "recall", "f1")
REGRESSION = ("mean_squared_error", "mean_absolute_error", "r2")
# History quantities where smaller is better; every other metric (accuracy, …, r2) improves upwards.
MINIMISED = frozenset({"loss", "mean_squared_error", "mean_absolute_error"})


CONFUSION_MATRIX = "confusion_matrix"
SPLIT_PREFIXES = {"": "train", "val_": "val", "test_": "test"}  # final metrics' key prefix → split


def split_confusion_matrices(metrics: dict) -> tuple[dict, dict[str, list]]:
    """Final metrics without their confusion matrices (k × k each), and those matrices by split name.

    `{"accuracy": 1.0, "confusion_matrix": [[2, 0], [0, 2]]}` → `({"accuracy": 1.0}, {"train": [[2, 0], [0, 2]]})`.
    """
    matrices = {split: metrics[prefix + CONFUSION_MATRIX] for prefix, split in SPLIT_PREFIXES.items()
                if prefix + CONFUSION_MATRIX in metrics}
    rest = {k: v for k, v in metrics.items() if not k.endswith(CONFUSION_MATRIX)}
    return rest, matrices


def minimised(name: str) -> bool:
    """Whether smaller is better for a history key such as `val_loss` or `accuracy` (early stopping's mode)."""
    return name.removeprefix("val_") in MINIMISED


class ClassificationAccumulator:
    """A running confusion matrix `[true, predicted]` over class indices."""

    def __init__(self, n_classes: int):
        self.n_classes = n_classes
        self.matrix = np.zeros((n_classes, n_classes), dtype=np.int64)

    def update(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Add a batch of class indices."""
        k = self.n_classes
        flat = np.asarray(y_true, dtype=np.int64) * k + np.asarray(y_pred, dtype=np.int64)
        self.matrix += np.bincount(flat.ravel(), minlength=k * k).reshape(k, k)

    def result(self, names: list[str]) -> dict[str, float]:
        """The named metrics over everything seen so far (macro averages, as scikit-learn's `average='macro'`)."""
        m = self.matrix
        total = m.sum()
        tp = np.diag(m).astype(np.float64)
        true_count, pred_count = m.sum(axis=1), m.sum(axis=0)
        # scikit-learn averages over the labels present in y_true or y_pred; absent ones don't count.
        present = (true_count + pred_count) > 0
        precision = np.divide(tp, pred_count, out=np.zeros_like(tp), where=pred_count > 0)
        recall = np.divide(tp, true_count, out=np.zeros_like(tp), where=true_count > 0)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)

        def macro(values: np.ndarray) -> float:
            return float(values[present].mean()) if present.any() else math.nan

        table = {
            "accuracy": lambda: float(tp.sum() / total) if total else math.nan,
            "precision": lambda: macro(precision),
            "recall": lambda: macro(recall),
            "f1": lambda: macro(f1),
        }
        return {name: table[name]() for name in names}


class RegressionAccumulator:
    """Running sums for MSE, MAE and R² (R² averaged uniformly over outputs, as scikit-learn).

    The target sums are taken about the first target seen (`shift`), not about 0: Σy² - (Σy)²/n
    cancels catastrophically when the mean is large against the spread, and a constant target
    must give a total sum of squares of exactly 0 for scikit-learn's constant-target rule.
    """

    def __init__(self, n_outputs: int):
        self.count = 0
        self.sse = np.zeros(n_outputs)
        self.sae = np.zeros(n_outputs)
        self.shift: np.ndarray | None = None
        self.sum_d = np.zeros(n_outputs)  # Σ (y - shift)
        self.sum_d2 = np.zeros(n_outputs)  # Σ (y - shift)²

    def update(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Add a batch of targets and predictions, `(n,)` or `(n, n_outputs)`."""
        y = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
        err = np.asarray(y_pred, dtype=np.float64).reshape(y.shape) - y
        if self.shift is None and len(y):
            self.shift = y[0].copy()
        self.count += len(y)
        self.sse += np.einsum("ij,ij->j", err, err)
        self.sae += np.abs(err).sum(axis=0)
        d = y - self.shift if len(y) else y
        self.sum_d += d.sum(axis=0)
        self.sum_d2 += np.einsum("ij,ij->j", d, d)

    def result(self, names: list[str]) -> dict[str, float]:
        """The named metrics over everything seen so far."""
        n = self.count
        if n == 0:
            return {name: math.nan for name in names}
        sst = np.maximum(self.sum_d2 - self.sum_d**2 / n, 0.0)
        # scikit-learn's r2_score: a constant target scores 1 if predicted exactly, else 0; one sample: NaN.
        r2 = np.where(sst > 0, 1 - self.sse / np.where(sst > 0, sst, 1), np.where(self.sse == 0, 1.0, 0.0))
        if n < 2:
            r2 = np.full_like(r2, math.nan)
        table = {
            "mean_squared_error": lambda: float(self.sse.mean() / n),
            "mean_absolute_error": lambda: float(self.sae.mean() / n),
            "r2": lambda: float(r2.mean()),
        }
        return {name: table[name]() for name in names}


def accumulator(task: str, n_classes: int | None, n_outputs: int = 1):
    """A fresh accumulator for `task`."""
    if task == "classification":
        return ClassificationAccumulator(int(n_classes))
    return RegressionAccumulator(n_outputs)


def check_names(names: list[str], task: str) -> None:
    """Raise ValueError for a metric name that does not apply to `task`."""
    valid = CLASSIFICATION if task == "classification" else REGRESSION
    bad = [n for n in names if n not in valid]
    if bad:
        raise ValueError(f"metric(s) {', '.join(bad)} do not apply to {task}; valid: {', '.join(valid)}")


def evaluate(names: list[str], task: str, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None) -> dict:
    """Final metrics of one split.

    For classification `y_true`/`y_pred` are class-index arrays and the result also
    holds `confusion_matrix` (rows: true class, columns: predicted) as a nested list.
    For regression they are values `(n,)` or `(n, n_outputs)`.
    """
    check_names(names, task)
    if task == "classification":
        if n_classes is None:
            raise ValueError("classification metrics need n_classes")
        acc = ClassificationAccumulator(n_classes)
        acc.update(y_true, y_pred)
        return {**acc.result(names), "confusion_matrix": acc.matrix.tolist()}
    y_true = np.asarray(y_true)
    acc = RegressionAccumulator(1 if y_true.ndim == 1 else y_true.shape[1])
    acc.update(y_true, y_pred)
    return acc.result(names)
