"""The scikit-learn backend: a spec trained as MLPClassifier / MLPRegressor, saved as a self-contained skops file."""

from __future__ import annotations

from typing import Any

import numpy as np

from trainyard.core.backends import sklearn_modelfile, sklearn_spec
from trainyard.core.backends.sklearn_modelfile import FORMAT_VERSION, TRUSTED, dump_model  # noqa: F401  (re-exported)
from trainyard.core.backends.base import TrainResult
from trainyard.core.callbacks import Callbacks
from trainyard.core.datasets.prepared import PreparedData, Preprocessing
from trainyard.core.errors import DatasetError, Diverged, SpecError
from trainyard.core.metrics import evaluate
from trainyard.core.spec import JobSpec


class SklearnPredictor:
    """Raw inputs → original labels or values: the model file's Pipeline (scaler + MLP) as scikit-learn runs it."""

    def __init__(self, pipeline: Any, spec: dict, preprocessing: Preprocessing):
        self.pipeline, self.spec, self.preprocessing = pipeline, spec, preprocessing
        self.estimator = pipeline.named_steps["mlp"]  # its classes_ are the original labels

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.preprocessing.n_features:
            raise ValueError(f"inputs must be rows of {self.preprocessing.n_features} numbers")
        return x

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw (unscaled) inputs → original labels (classification) or values (regression)."""
        return self.pipeline.predict(self._inputs(x))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Raw inputs → class probabilities `(n, k)`, columns in the order of `preprocessing.classes`."""
        if self.preprocessing.task != "classification":
            raise ValueError("probabilities exist for classification models only")
        return self.pipeline.predict_proba(self._inputs(x))


def load_model(model: bytes) -> SklearnPredictor:
    """Rebuild a predictor from skops bytes, trusting only `TRUSTED`; any problem is a ModelFileError."""
    pipeline, spec, preprocessing = sklearn_modelfile.load(model)
    return SklearnPredictor(pipeline, spec, preprocessing)


class SklearnBackend:
    """Backend `sklearn`: scikit-learn's MLP, trained in one `fit` call (see sklearn_fit)."""

    name = "sklearn"
    model_format = "skops"

    def check(self, spec: JobSpec) -> list[dict]:
        """What scikit-learn cannot express in `spec` (its defaults are filled before: core/spec/defaults.py)."""
        return sklearn_spec.check(spec)

    def train(self, spec: JobSpec, data: PreparedData, callbacks: Callbacks) -> TrainResult:
        """Fit, evaluate on every split and save; raises Diverged / Cancelled / TimedOut."""
        import sklearn

        from trainyard.core.backends import sklearn_fit

        errors = sklearn_spec.task_errors(spec, data.task)
        if errors:
            raise SpecError(errors)
        dtype = np.dtype(spec.backend_options["dtype"])  # filled by core/spec/defaults.py
        x, y = data.x_train.astype(dtype), data.y_train
        if data.task == "classification" and len(np.unique(y)) != data.n_classes:
            raise DatasetError("the training split lacks some classes; scikit-learn needs every class in it")
        cls = sklearn_fit.HookedMLPClassifier if data.task == "classification" else sklearn_fit.HookedMLPRegressor
        est = cls(**sklearn_spec.estimator_params(spec, len(x)))
        reporter = sklearn_fit.Reporter(spec, callbacks, data.x_val.astype(dtype), data.y_val, data.task, data.n_classes)
        try:
            stopped_early = sklearn_fit.fit(est, reporter, x, y)
        except ValueError as exc:
            if "non-finite" in str(exc):  # scikit-learn's own check of the final weights
                raise Diverged(max(getattr(est, "n_iter_", 1), 1)) from None
            raise
        est = sklearn_fit.plain_estimator(est)
        versions = {"scikit-learn": sklearn.__version__}
        return TrainResult(history=reporter.history, metrics=self._metrics(spec, est, data, dtype),
                           model=dump_model(est, spec, data.preprocessing, versions), format=self.model_format,
                           stopped_early=stopped_early, versions=versions)

    @staticmethod
    def _metrics(spec: JobSpec, est: Any, data: PreparedData, dtype: np.dtype) -> dict:
        from trainyard.core.backends.sklearn_fit import predicted, sklearn_loss

        metrics: dict[str, Any] = {}
        names = list(spec.training.metrics or ())
        for prefix, x, y in (("", data.x_train, data.y_train), ("val_", data.x_val, data.y_val),
                             ("test_", data.x_test, data.y_test)):
            if len(x) == 0:
                continue
            x = x.astype(dtype)
            # A model that ran away overflows here; that is a non-finite loss (train_job: Diverged), not a warning.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                scores = evaluate(names, data.task, y, predicted(est, x), data.n_classes)
                loss = sklearn_loss(est, x, y)
            metrics.update({f"{prefix}loss": loss, **{f"{prefix}{k}": v for k, v in scores.items()}})
        return metrics

    def load(self, model: bytes) -> SklearnPredictor:
        """Rebuild a predictor from a skops model file (explicit trusted types; never pickle)."""
        return load_model(model)
