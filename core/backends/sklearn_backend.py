"""The scikit-learn backend: a spec trained as MLPClassifier / MLPRegressor, saved as a self-contained skops file."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from core.backends import sklearn_spec
from core.backends.base import Callbacks, PreparedData, Preprocessing, TrainResult
from core.errors import ZIP_READ_ERRORS, DatasetError, Diverged, ModelFileError, SpecError
from core.metrics import evaluate
from core.spec import JobSpec, normalised

FORMAT_VERSION = 1
_MLP = "sklearn.neural_network._multilayer_perceptron"
# The only types a trainyard skops file may hold. Everything else is refused before skops
# builds anything, so a crafted file cannot make us import or call other code.
TRUSTED = [f"{_MLP}.MLPClassifier", f"{_MLP}.MLPRegressor", "sklearn.preprocessing._label.LabelBinarizer"]
_ALLOWED = {tuple(t.rsplit(".", 1)) for t in TRUSTED} | {
    ("builtins", name) for name in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType")
} | {("numpy", name) for name in ("ndarray", "float64", "float32", "int64", "int32", "bool_")}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a model file")


class SklearnPredictor:
    """Raw inputs → original labels or values, with the scaling the model was trained with."""

    def __init__(self, estimator: Any, spec: dict, preprocessing: Preprocessing):
        self.estimator, self.spec, self.preprocessing = estimator, spec, preprocessing
        self._dtype = np.dtype(spec.get("backend_options", {}).get("dtype", "float64"))

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.preprocessing.n_features:
            raise ValueError(f"inputs must be rows of {self.preprocessing.n_features} numbers")
        return self.preprocessing.transform(x).astype(self._dtype)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw (unscaled) inputs → original labels (classification) or values (regression)."""
        out = self.estimator.predict(self._inputs(x))
        if self.preprocessing.task == "classification":
            return np.asarray(self.preprocessing.classes)[out.astype(np.int64)]
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Raw inputs → class probabilities `(n, k)`."""
        if self.preprocessing.task != "classification":
            raise ValueError("probabilities exist for classification models only")
        return self.estimator.predict_proba(self._inputs(x))


def _audit(model: bytes) -> None:
    """Refuse a file whose skops schema names any type outside `_ALLOWED` (checked before skops constructs)."""
    try:
        schema = json.loads(zipfile.ZipFile(io.BytesIO(model)).read("schema.json"))
    except (KeyError, ValueError, *ZIP_READ_ERRORS) as exc:
        raise ModelFileError(f"not a scikit-learn model file ({exc})") from None
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node and not (isinstance(node["__class__"], str) and isinstance(node.get("__module__"), str)
                                            and (node["__module__"], node["__class__"]) in _ALLOWED):
                raise ModelFileError(f"model file holds a type trainyard does not load: "
                                     f"{node.get('__module__')}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def dump_model(estimator: Any, spec: JobSpec, preprocessing: Preprocessing, versions: dict) -> bytes:
    """The skops model file: the plain estimator plus, as JSON, the normalised spec and preprocessing."""
    import skops.io

    meta = {"format": "trainyard-sklearn", "format_version": FORMAT_VERSION, "spec": normalised(spec),
            "preprocessing": preprocessing.to_dict(), "versions": versions}
    return skops.io.dumps({"trainyard": json.dumps(meta, default=_json_default), "estimator": estimator})


def load_model(model: bytes) -> SklearnPredictor:
    """Rebuild a predictor from skops bytes, trusting only `TRUSTED`; any problem is a ModelFileError."""
    import skops.io
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    _audit(model)
    try:
        content = skops.io.loads(model, trusted=TRUSTED)
        meta = json.loads(content["trainyard"])
        estimator = content["estimator"]
        preprocessing = Preprocessing.from_dict(meta["preprocessing"])
        spec = meta["spec"]
    except Exception as exc:  # skops raises many kinds for a damaged file; all mean the same to a caller
        raise ModelFileError(f"corrupt scikit-learn model file ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != "trainyard-sklearn" or meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"unsupported model file format {meta.get('format')!r} version {meta.get('format_version')!r}")
    if type(estimator) not in (MLPClassifier, MLPRegressor):
        raise ModelFileError("model file does not hold a scikit-learn MLP")
    return SklearnPredictor(estimator, spec, preprocessing)


class SklearnBackend:
    """Backend `sklearn`: scikit-learn's MLP, trained in one `fit` call (see sklearn_fit)."""

    name = "sklearn"
    model_format = "skops"

    def check(self, spec: JobSpec) -> list[dict]:
        """What scikit-learn cannot express in `spec`; fills scikit-learn's own defaults into it."""
        return sklearn_spec.check(spec)

    def train(self, spec: JobSpec, data: PreparedData, callbacks: Callbacks) -> TrainResult:
        """Fit, evaluate on every split and save; raises Diverged / Cancelled / TimedOut."""
        import sklearn

        from core.backends import sklearn_fit

        errors = sklearn_spec.task_errors(spec, data.task)
        if errors:
            raise SpecError(errors)
        dtype = np.dtype(spec.backend_options.get("dtype", "float64"))
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
        from core.backends.sklearn_fit import predicted, sklearn_loss

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
