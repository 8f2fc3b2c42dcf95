"""The scikit-learn model file: a skops archive of a `Pipeline` (scaler + MLP) that works outside trainyard.

`skops.io.load(f, trusted=TRUSTED)` gives a plain scikit-learn `Pipeline`: step `scaler`
(a `StandardScaler` or `MinMaxScaler` holding the scaling fitted on the training split, or
`"passthrough"`) and step `mlp` (the `MLPClassifier` / `MLPRegressor`), so `predict(raw_rows)`
returns the original labels and `predict_proba(raw_rows)` the service's probabilities, in the
order of `classes_`. The archive also holds `trainyard.json` (format version, normalised spec,
preprocessing, library versions), which skops ignores.

Format version 1 (a skops dict `{"trainyard": meta JSON, "estimator": MLP trained on class
indices}`) is still read: it becomes the same Pipeline in memory.

Loading audits the skops schema against `_ALLOWED` before skops builds anything, then loads
with an explicit trusted-type list; nothing is ever unpickled.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from typing import Any

import numpy as np

from trainyard.core.datasets.prepared import Preprocessing
from trainyard.core.errors import ZIP_READ_ERRORS, ModelFileError
from trainyard.core.spec import JobSpec, normalised

FORMAT_VERSION = 2
META_MEMBER = "trainyard.json"
_MLP = "sklearn.neural_network._multilayer_perceptron"
_DATA = "sklearn.preprocessing._data"
# The only types a trainyard skops file may hold. Everything else is refused before skops
# builds anything, so a crafted file cannot make us import or call other code.
TRUSTED = [f"{_MLP}.MLPClassifier", f"{_MLP}.MLPRegressor", "sklearn.preprocessing._label.LabelBinarizer",
           "sklearn.pipeline.Pipeline", f"{_DATA}.StandardScaler", f"{_DATA}.MinMaxScaler"]
_ALLOWED = {tuple(t.rsplit(".", 1)) for t in TRUSTED} | {
    ("builtins", name) for name in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType")
} | {("numpy", name) for name in ("ndarray", "float64", "float32", "int64", "int32", "bool_", "str_")}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a model file")


def label_array(classes: list) -> np.ndarray:
    """Class labels as one numpy array, index i ↔ class i (as predictions have always returned them)."""
    return np.asarray(classes)


def _scaler(pre: Preprocessing) -> Any:
    """The scikit-learn scaler that computes exactly `pre.transform` (or "passthrough")."""
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if pre.scaler is None:
        return "passthrough"
    offset, scale = np.asarray(pre.offset, np.float64), np.asarray(pre.scale, np.float64)
    if pre.scaler == "standard":  # transform: (x - mean_) / scale_
        s = StandardScaler()
        s.mean_, s.scale_, s.var_ = offset, scale, scale**2
    else:  # transform: x * scale_ + min_ with scale_ = 1 / range, min_ = -min / range
        s = MinMaxScaler()
        s.data_min_, s.data_range_, s.data_max_ = offset, scale, offset + scale
        s.scale_ = 1 / scale
        s.min_ = -offset * s.scale_
    s.n_features_in_, s.n_samples_seen_ = pre.n_features, 0  # what fit saw is not kept; nothing reads it
    return s


def build_pipeline(estimator: Any, pre: Preprocessing) -> Any:
    """Pipeline(scaler, mlp) on raw rows; a classifier's class indices become the original labels."""
    from sklearn.pipeline import Pipeline

    mlp = copy.deepcopy(estimator)
    if pre.task == "classification":
        labels = label_array(pre.classes)
        mlp.classes_ = labels
        mlp._label_binarizer.classes_ = labels  # predict() decodes through it
    return Pipeline([("scaler", _scaler(pre)), ("mlp", mlp)])


def dump_model(estimator: Any, spec: JobSpec, preprocessing: Preprocessing, versions: dict) -> bytes:
    """The model file: the skops Pipeline plus `trainyard.json` (the normalised spec, preprocessing, versions)."""
    import skops.io

    meta = {"format": "trainyard-sklearn", "format_version": FORMAT_VERSION, "spec": normalised(spec),
            "preprocessing": preprocessing.to_dict(), "versions": versions}
    out = io.BytesIO(skops.io.dumps(build_pipeline(estimator, preprocessing)))
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr(META_MEMBER, json.dumps(meta, default=_json_default))
    return out.getvalue()


def _audit(model: bytes) -> dict | None:
    """Refuse a file whose skops schema names any type outside `_ALLOWED` (checked before skops constructs);
    return its trainyard.json (None in a version-1 file)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(model))
        schema = json.loads(archive.read("schema.json"))
        meta = json.loads(archive.read(META_MEMBER)) if META_MEMBER in archive.namelist() else None
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
    return meta


def _check_meta(meta: Any) -> tuple[dict, Preprocessing]:
    if not isinstance(meta, dict) or meta.get("format") != "trainyard-sklearn" or meta.get("format_version") not in (1, 2):
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise ModelFileError(f"unsupported model file format version {version!r}")
    try:
        return meta["spec"], Preprocessing.from_dict(meta["preprocessing"])
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"model file lacks its spec or preprocessing ({exc})") from None


def load(model: bytes) -> tuple[Any, dict, Preprocessing]:
    """(Pipeline, spec, preprocessing) from skops bytes, trusting only `TRUSTED`; any problem is a ModelFileError."""
    import skops.io
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline

    meta = _audit(model)
    try:
        content = skops.io.loads(model, trusted=TRUSTED)
        if meta is None:  # format version 1
            meta, estimator = json.loads(content["trainyard"]), content["estimator"]
    except Exception as exc:  # skops raises many kinds for a damaged file; all mean the same to a caller
        raise ModelFileError(f"corrupt scikit-learn model file ({type(exc).__name__}: {exc})") from None
    spec, pre = _check_meta(meta)
    if meta["format_version"] == 1:
        if type(estimator) not in (MLPClassifier, MLPRegressor):
            raise ModelFileError("model file does not hold a scikit-learn MLP")
        content = build_pipeline(estimator, pre)
    if (type(content) is not Pipeline or len(content.steps) != 2
            or type(content.steps[1][1]) not in (MLPClassifier, MLPRegressor)):
        raise ModelFileError("model file does not hold a scikit-learn Pipeline of a scaler and an MLP")
    return content, spec, pre
