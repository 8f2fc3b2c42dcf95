"""Self-contained `.keras` model files: Keras's own archive plus a `trainyard.json` member (spec, preprocessing).

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

from core.backends.base import Preprocessing
from core.backends.keras_build import ALLOWED_CLASSES, ALLOWED_MODULES
from core.errors import ZIP_READ_ERRORS, ModelFileError
from core.targets import OutputPredictor

FORMAT_VERSION = 1
META_MEMBER = "trainyard.json"
ALLOWED_ACTIVATIONS = frozenset({"linear", "sigmoid", "tanh", "relu", "softmax"})


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a model file")


def dump(model: Any, meta: dict) -> bytes:
    """The model (with its optimizer state, as Keras saves it) as `.keras` bytes, `meta` stored as trainyard.json."""
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
        with open(path, "rb") as f:
            return f.read()


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
    """Raw inputs → original labels or values, through the saved scaling and the Keras model."""

    def __init__(self, model: Any, spec: dict, preprocessing: Preprocessing):
        self.model, self.spec, self.preprocessing = model, spec, preprocessing

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
    return KerasPredictor(model, spec, preprocessing)
