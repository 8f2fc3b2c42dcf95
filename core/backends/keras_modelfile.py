"""Self-contained `.keras` model files: Keras's own archive plus a `trainyard.json` member (spec, preprocessing).

A job's final model file (`export`) has the preprocessing inside: a `Normalization` layer
named `preprocessing` (mean = the fitted offset, variance = scale²) before the trained
layers, so `keras.saving.load_model(f).predict(raw_rows)` gives the service's answers with
nothing but Keras. It also holds `trainyard.npz` (`WEIGHTS_MEMBER`): the same network as a
numpy-engine model file (`trainyard.core.modelfile`), so exporting it (ONNX) needs no TensorFlow.
Checkpoints (`dump`) hold the model as it trains: on scaled inputs, with its optimizer.

Loading audits `config.json` against an allowlist of classes and activations before
Keras reads it, then loads with `safe_mode=True`; nothing is ever unpickled.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
import zipfile
from typing import Any

import numpy as np

from trainyard.core.backends.keras_build import ALLOWED_CLASSES, ALLOWED_MODULES
from trainyard.core.datasets.prepared import Preprocessing
from trainyard.core.errors import ZIP_READ_ERRORS, ModelFileError
from trainyard.core.spec import JobSpec, normalised
from trainyard.core.targets import OutputPredictor

FORMAT_VERSION = 1
META_MEMBER = "trainyard.json"
WEIGHTS_MEMBER = "trainyard.npz"
PREPROCESSING_LAYER = "preprocessing"
ALLOWED_ACTIVATIONS = frozenset({"linear", "sigmoid", "tanh", "relu", "softmax"})


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a model file")


def dump(model: Any, meta: dict, members: dict[str, bytes] | None = None) -> bytes:
    """The model (with its optimizer state, as Keras saves it) as `.keras` bytes, `meta` stored as trainyard.json
    and `members` as further archive members (Keras reads neither)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with warnings.catch_warnings():
            # TensorFlow's variables predate numpy 2's `copy` keyword; Keras's saver trips over that, harmlessly
            warnings.filterwarnings("ignore", message="__array__ implementation doesn't accept a copy keyword",
                                    category=DeprecationWarning)
            model.save(path)
        with zipfile.ZipFile(path, "a") as archive:
            doc = {"format": "trainyard-keras", "format_version": FORMAT_VERSION, **meta}
            archive.writestr(META_MEMBER, json.dumps(doc, default=_json_default))
            for name, data in (members or {}).items():
                archive.writestr(name, data)
        with open(path, "rb") as f:
            return f.read()


def _serving_model(model: Any, preprocessing: Preprocessing) -> Any:
    """The trained layers behind a `Normalization` layer that scales raw inputs as the training split was."""
    import keras

    if preprocessing.scaler is None:
        return model
    scale = np.asarray(preprocessing.scale, np.float64)
    norm = keras.layers.Normalization(mean=preprocessing.offset, variance=(scale**2).tolist(), name=PREPROCESSING_LAYER)
    return keras.Sequential([keras.Input(shape=(preprocessing.n_features,), name="inputs"), norm, *model.layers],
                            name=model.name)


def numpy_network(model: Any, spec: JobSpec, n_features: int) -> Any:
    """The trained Keras layers as a float32 numpy-engine Network (same weights; LeakyReLU folded into its Dense)."""
    from trainyard.core.network import Network

    configs = [layer.model_dump(mode="json") for layer in spec.model.layers]
    network = Network.from_configs(configs, n_features, np.random.default_rng(0), np.float32)
    for i, (config, layer) in enumerate(zip(configs, network.layers)):
        if config["type"] == "dense":
            values = model.get_layer(f"dense_{i}").get_weights()
            layer.set_weights(dict(zip(("kernel", "bias") if layer.use_bias else ("kernel",), values)))
        elif config["type"] == "batch_norm":
            values = model.get_layer(f"batch_norm_{i}").get_weights()
            layer.set_weights(dict(zip(("gamma", "beta", "moving_mean", "moving_variance"), values)))
    return network


def export(model: Any, spec: JobSpec, preprocessing: Preprocessing, versions: dict) -> bytes:
    """A job's final model file: scaling inside the Keras model, and the numpy-engine copy of its weights."""
    from trainyard.core.modelfile import save_model

    copy = save_model(numpy_network(model, spec, preprocessing.n_features), normalised(spec), preprocessing, versions)
    meta = {"spec": normalised(spec), "preprocessing": preprocessing.to_dict(), "versions": versions,
            "preprocessing_in_model": preprocessing.scaler is not None, "classes": preprocessing.classes}
    return dump(_serving_model(model, preprocessing), meta, {WEIGHTS_MEMBER: copy})


def has_numpy_copy(data: bytes) -> bool:
    """Whether a `.keras` file carries the numpy copy of its weights (final files since trainyard recorded it)."""
    try:
        return WEIGHTS_MEMBER in zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (ValueError, *ZIP_READ_ERRORS):
        return False


def numpy_copy(data: bytes) -> Any:
    """The numpy-engine predictor of a final `.keras` file's weights (`trainyard.core.modelfile.NumpyPredictor`), without
    TensorFlow; ModelFileError for a file saved without one (before trainyard recorded it) or a damaged one."""
    from trainyard.core.modelfile import load_model

    read(data)
    try:
        member = zipfile.ZipFile(io.BytesIO(data)).read(WEIGHTS_MEMBER)
    except KeyError:
        raise ModelFileError("this Keras model file has no numpy copy of its weights (it was saved by an older "
                             "trainyard); train the job again to export it") from None
    except (ValueError, *ZIP_READ_ERRORS) as exc:
        raise ModelFileError(f"not a trainyard Keras model file ({exc})") from None
    return load_model(member)


def _audit(config: Any) -> None:
    """Refuse any class, module, registered (custom) name or activation trainyard never writes."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        if not isinstance(node, dict):
            continue
        if "class_name" in node:
            name, module = node["class_name"], node.get("module")
            # isinstance first: a crafted list or dict is unhashable and must be refused, not raise TypeError
            if (not isinstance(name, str) or not isinstance(module, (str, type(None))) or name not in ALLOWED_CLASSES
                    or module not in ALLOWED_MODULES or node.get("registered_name") is not None):
                raise ModelFileError(f"model file names a class trainyard does not load: {module}.{name}")
        activation = node.get("activation")
        if activation is not None and (not isinstance(activation, str) or activation not in ALLOWED_ACTIVATIONS):
            raise ModelFileError(f"model file names an activation trainyard does not load: {activation!r}")
        stack.extend(node.values())


def read(data: bytes) -> tuple[dict, dict]:
    """(Keras config, trainyard meta) of a model file, audited; ModelFileError if anything is wrong."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        config = json.loads(archive.read("config.json"))
        meta = json.loads(archive.read(META_MEMBER))
    except (KeyError, ValueError, *ZIP_READ_ERRORS) as exc:  # ValueError covers bad JSON and UnicodeDecodeError
        raise ModelFileError(f"not a trainyard Keras model file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != "trainyard-keras" or meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError("unsupported model file format or version")
    _audit(config)
    return config, meta


def load(data: bytes, compile: bool = False) -> tuple[Any, dict]:
    """The Keras model (safe mode) and trainyard meta of a model file."""
    _, meta = read(data)  # audit before Keras parses anything
    import keras

    try:
        with tempfile.TemporaryDirectory() as tmp:  # Keras reads the weights (HDF5) from a real file
            path = os.path.join(tmp, "model.keras")
            with open(path, "wb") as f:
                f.write(data)
            model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises many kinds for a damaged archive; all mean the same to a caller
        raise ModelFileError(f"corrupt Keras model file ({type(exc).__name__}: {exc})") from None
    return model, meta


class KerasPredictor(OutputPredictor):
    """Raw inputs → original labels or values, through the saved scaling and the Keras model.

    `scaled_inside`: the model's own `preprocessing` layer scales (a final model file); else the
    scaling is applied here first (files saved before the scaling moved inside).
    """

    def __init__(self, model: Any, spec: dict, preprocessing: Preprocessing, scaled_inside: bool = False):
        self.model, self.spec, self.preprocessing = model, spec, preprocessing
        self.scaled_inside = scaled_inside

    def outputs(self, x: np.ndarray) -> np.ndarray:
        if not self.scaled_inside:
            return super().outputs(x)
        x = np.asarray(x, dtype=np.float64)
        n = self.preprocessing.n_features
        if x.ndim != 2 or x.shape[1] != n:
            raise ValueError(f"inputs must be rows of {n} numbers")
        return self._forward(x)

    def _forward(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(scaled.astype(np.float32), batch_size=1024, verbose=0))


def load_predictor(data: bytes) -> KerasPredictor:
    """A predictor from `.keras` bytes."""
    model, meta = load(data)
    try:
        preprocessing = Preprocessing.from_dict(meta["preprocessing"])
        spec = meta["spec"]
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"model file lacks its spec or preprocessing ({exc})") from None
    inside = meta.get("preprocessing_in_model") is True
    has_layer = any(layer.name == PREPROCESSING_LAYER for layer in model.layers)
    if inside != has_layer:
        raise ModelFileError("the model file's preprocessing layer does not match its metadata")
    return KerasPredictor(model, spec, preprocessing, scaled_inside=inside)
