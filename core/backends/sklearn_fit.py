"""Training scikit-learn's MLP in ONE `fit` call while reporting each epoch and honouring cancellation.

scikit-learn's `_fit_stochastic` calls `_backprop` once per mini-batch and
`_update_no_improvement_count` once per epoch, right after appending the epoch's loss
to `loss_curve_`. Subclasses override those two private methods to report and to
check for cancellation; they read state and never touch the weights, the optimizer
or the random state, so the trained weights are bit-identical to a plain `fit`
(a test checks this). A `partial_fit` loop or `warm_start` would change the result.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.neural_network._base import LOSS_FUNCTIONS

from trainyard.core.callbacks import Callbacks
from trainyard.core.errors import Diverged
from trainyard.core.metrics import evaluate, minimised
from trainyard.core.spec import JobSpec

# attributes that exist only while training; the saved model is a plain estimator without them
TRAINING_ONLY = ("_trainyard", "_optimizer", "_random_state", "_best_coefs", "_best_intercepts")


def network_output(est: Any, x: np.ndarray) -> np.ndarray:
    """The output layer's activations `(n, n_outputs)` (probabilities for a classifier)."""
    return est._forward_pass_fast(x, check_input=False)


def sklearn_loss(est: Any, x: np.ndarray, y: np.ndarray) -> float:
    """scikit-learn's training objective on (x, y): its loss plus the `alpha` L2 penalty, as in `loss_curve_`."""
    out = network_output(est, x)
    if isinstance(est, MLPClassifier):
        target = est._label_binarizer.transform(y).astype(out.dtype)
        name = "binary_log_loss" if out.shape[1] == 1 else "log_loss"
    else:
        target, name = y.reshape(len(y), -1).astype(out.dtype), "squared_error"
    penalty = sum(float(np.dot(w.ravel(), w.ravel())) for w in est.coefs_)
    return float(LOSS_FUNCTIONS[name](target, out)) + 0.5 * est.alpha * penalty / len(x)


def predicted(est: Any, x: np.ndarray) -> np.ndarray:
    """Class indices (classifier; its classes_ are indices) or values (regressor) for scaled inputs."""
    return est.predict(x)


class Reporter:
    """What the hooks do: build history rows, count non-improving epochs on a validation monitor, check."""

    def __init__(self, spec: JobSpec, callbacks: Callbacks, x_val: np.ndarray, y_val: np.ndarray,
                 task: str, n_classes: int | None):
        es = spec.training.early_stopping
        self.monitor = es.monitor if es else None
        self.restore_best = bool(es and es.restore_best_weights)
        self.metrics = list(spec.training.metrics or ())
        self.callbacks, self.x_val, self.y_val = callbacks, x_val, y_val
        self.task, self.n_classes = task, n_classes
        self.history: list[dict] = []
        self.start = time.monotonic()
        self.best_value = math.inf
        self.best_weights: tuple[list, list] | None = None

    @property
    def monitors_validation(self) -> bool:
        return bool(self.monitor and self.monitor.startswith("val_"))

    def batch(self) -> None:
        if self.callbacks.check:
            self.callbacks.check()

    def row(self, est: Any, epoch: int, loss: float) -> dict:
        if not math.isfinite(loss):
            raise Diverged(epoch)
        row: dict[str, Any] = {"epoch": epoch, "loss": float(loss)}
        if len(self.x_val):
            row["val_loss"] = sklearn_loss(est, self.x_val, self.y_val)
            scores = evaluate(self.metrics, self.task, self.y_val, predicted(est, self.x_val), self.n_classes)
            row.update({f"val_{m}": scores[m] for m in self.metrics})
        row["time"] = time.monotonic() - self.start
        return row

    def _signed(self, row: dict) -> float:
        """The monitored value, negated where larger is better, so that smaller is always better."""
        value = row[self.monitor]
        return value if minimised(self.monitor) else -value

    def count_validation(self, est: Any, row: dict) -> None:
        """scikit-learn's own no-improvement rule (`tol`), applied to the monitored validation quantity."""
        value = self._signed(row)
        if value > self.best_value - est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        self._keep_if_best(est, value)

    def _keep_if_best(self, est: Any, value: float) -> None:
        if value < self.best_value:
            self.best_value = value
            if self.restore_best:
                self.best_weights = ([c.copy() for c in est.coefs_], [b.copy() for b in est.intercepts_])

    def end_epoch(self, est: Any, row: dict) -> None:
        if not self.monitors_validation:
            self._keep_if_best(est, self._signed(row) if self.monitor else row["loss"])
        self.history.append(row)
        if self.callbacks.on_epoch:
            self.callbacks.on_epoch(row)
        self.batch()


class _Hooks:
    """Mixed in before MLPClassifier / MLPRegressor; `_trainyard` is the Reporter."""

    _trainyard: Reporter

    def _backprop(self, *args: Any) -> Any:
        self._trainyard.batch()  # once per mini-batch, and once per L-BFGS function evaluation
        return super()._backprop(*args)

    def _update_no_improvement_count(self, early_stopping: bool, x_val: Any, y_val: Any, sample_weight: Any) -> None:
        reporter = self._trainyard
        row = reporter.row(self, self.n_iter_, self.loss_curve_[-1])
        if reporter.monitors_validation:
            reporter.count_validation(self, row)
        else:
            super()._update_no_improvement_count(early_stopping, x_val, y_val, sample_weight)
        reporter.end_epoch(self, row)


class HookedMLPClassifier(_Hooks, MLPClassifier):
    """MLPClassifier that reports each epoch from inside `fit`."""


class HookedMLPRegressor(_Hooks, MLPRegressor):
    """MLPRegressor that reports each epoch from inside `fit`."""


def fit(est: Any, reporter: Reporter, x: np.ndarray, y: np.ndarray) -> bool:
    """Fit `est` (a Hooked estimator) once; returns whether it stopped before `max_iter` epochs."""
    est._trainyard = reporter
    # Reaching max_iter is a normal end for a job (the history shows the loss), and overflow
    # on the way to a non-finite loss is reported as Diverged by the hook, not as a warning.
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(x, y)
    if est.solver == "lbfgs":  # no epochs to hook: one row for the whole optimisation
        reporter.end_epoch(est, reporter.row(est, est.n_iter_, est.loss_))
    elif reporter.best_weights is not None:
        est.coefs_, est.intercepts_ = reporter.best_weights
    return est.n_iter_ < est.max_iter


def plain_estimator(est: Any) -> Any:
    """The trained model as a plain MLPClassifier / MLPRegressor (what is saved), without training-only state."""
    cls = MLPClassifier if isinstance(est, MLPClassifier) else MLPRegressor
    plain = cls(**est.get_params())
    params = set(plain.get_params())
    plain.__dict__.update({k: v for k, v in est.__dict__.items() if k not in params and k not in TRAINING_ONLY})
    return plain
