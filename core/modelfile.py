"""The numpy engine's `.npz` model file, written and read without pickle, and its Predictor.

Members: `layers.<i>.<name>` weight arrays, and `trainyard` (so the zip holds
`trainyard.npy`): a JSON string with the format version, the normalised spec,
the preprocessing, the layer configs, the dtype and the library versions. Loading
checks every member against the declared layers before building anything, so a
tampered or foreign file is refused with ModelFileError.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
from pydantic import ValidationError

from trainyard.core.datasets.prepared import Preprocessing
from trainyard.core.errors import ZIP_READ_ERRORS, ModelFileError
from trainyard.core.network import Network
from trainyard.core.spec import ModelSpec
from trainyard.core.targets import OutputPredictor

FORMAT = "trainyard-npz"
FORMAT_VERSION = 1
DTYPES = ("float32", "float64")
_MAX_WIDTH = 50_000_000  # DESIGN §7's parameter limit: no layer of a valid file is wider


def save_model(network: Network, spec: dict, preprocessing: Preprocessing, versions: dict[str, str]) -> bytes:
    """The model file's bytes."""
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "spec": spec,
        "preprocessing": preprocessing.to_dict(), "n_features": network.n_features,
        "dtype": network.dtype.name, "layers": network.layer_configs(), "versions": versions,
    }
    arrays = {f"layers.{i}.{k}": v for i, layer in enumerate(network.layers) for k, v in layer.weights().items()}
    arrays["trainyard"] = np.array(json.dumps(header))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _expected_shapes(configs: list, n_features: int) -> dict[str, tuple[int, ...]]:
    """Member name → shape implied by the layer configs, computed without allocating anything."""
    shapes: dict[str, tuple[int, ...]] = {}
    width = n_features
    for i, config in enumerate(configs):
        kind = config.get("type") if isinstance(config, dict) else None
        if kind == "dense":
            units = config.get("units")
            if not isinstance(units, int) or not 0 < units <= _MAX_WIDTH:
                raise ModelFileError(f"layer {i}: bad units {units!r}")
            shapes[f"layers.{i}.kernel"] = (width, units)
            if config.get("use_bias", True):
                shapes[f"layers.{i}.bias"] = (units,)
            width = units
        elif kind == "batch_norm":
            for name in ("gamma", "beta", "moving_mean", "moving_variance"):
                shapes[f"layers.{i}.{name}"] = (width,)
        elif kind != "dropout":
            raise ModelFileError(f"layer {i}: unknown layer type {kind!r}")
    return shapes


def _check_preprocessing(raw: Any, n_features: int, n_outputs: int) -> Preprocessing:
    if not isinstance(raw, dict):
        raise ModelFileError("preprocessing is not an object")
    try:
        pre = Preprocessing.from_dict(raw)
    except TypeError as exc:
        raise ModelFileError(f"bad preprocessing: {exc}") from None
    if pre.task not in ("classification", "regression") or pre.n_features != n_features:
        raise ModelFileError("preprocessing does not match the network")
    if pre.task == "classification":
        k = len(pre.classes) if isinstance(pre.classes, list) else -1
        if k != (2 if n_outputs == 1 else n_outputs):
            raise ModelFileError("the class list does not match the output layer")
        # predictions index this list: a nested or repeated label would make them fail or be ambiguous
        if not all(isinstance(c, (str, int, float)) for c in pre.classes) or len(set(pre.classes)) != k:
            raise ModelFileError("class labels must be distinct numbers or strings")
    if pre.scaler is not None:
        if pre.scaler not in ("standard", "minmax"):
            raise ModelFileError(f"unknown scaler {pre.scaler!r}")
        for values in (pre.offset, pre.scale):
            if not (isinstance(values, list) and len(values) == n_features
                    and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)):
                raise ModelFileError("scaler parameters do not match the features")
        if any(v == 0 for v in pre.scale):
            raise ModelFileError("scaler has a zero scale")
    return pre


def _read(blob: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, KeyError, MemoryError, *ZIP_READ_ERRORS) as exc:  # MemoryError: a .npy header may declare TBs
        raise ModelFileError(f"not a readable npz model file: {exc}") from None
    header = arrays.pop("trainyard", None)
    if header is None or header.shape != () or header.dtype.kind != "U":
        raise ModelFileError("missing or malformed 'trainyard' header")
    try:
        meta = json.loads(str(header[()]))
    except json.JSONDecodeError:
        raise ModelFileError("the 'trainyard' header is not JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError("not a trainyard numpy model file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"unsupported model file format version {meta.get('format_version')!r}")
    return meta, arrays


def load_model(blob: bytes) -> "NumpyPredictor":
    """A predictor from model-file bytes; every member is checked first (ModelFileError if anything is off)."""
    meta, arrays = _read(blob)
    n_features, dtype, configs = meta.get("n_features"), meta.get("dtype"), meta.get("layers")
    if not isinstance(n_features, int) or not 0 < n_features <= _MAX_WIDTH or dtype not in DTYPES:
        raise ModelFileError("bad n_features or dtype")
    if not isinstance(configs, list) or not configs or not isinstance(meta.get("spec"), dict):
        raise ModelFileError("missing layers or spec")
    try:  # the spec's own layer models: every parameter in range (a negative epsilon would predict NaN)
        ModelSpec.model_validate({"layers": configs})
    except ValidationError as exc:
        raise ModelFileError(f"bad layer config: {exc.errors()[0]['msg']}") from None
    expected = _expected_shapes(configs, n_features)
    if set(arrays) != set(expected):
        raise ModelFileError("weight arrays do not match the layers")
    for name, shape in expected.items():
        a = arrays[name]
        if a.shape != shape or a.dtype != np.dtype(dtype) or not np.isfinite(a).all():
            raise ModelFileError(f"weight {name} has the wrong shape or dtype, or non-finite values")
    try:
        network = Network.from_configs(configs, n_features, np.random.default_rng(0), dtype)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"bad layer config: {exc}") from None
    for i, layer in enumerate(network.layers):
        layer.set_weights({k: arrays[f"layers.{i}.{k}"] for k in layer.weights()})
    pre = _check_preprocessing(meta.get("preprocessing"), n_features, network.n_outputs)
    return NumpyPredictor(network, pre, meta["spec"], meta.get("versions") or {})


class NumpyPredictor(OutputPredictor):
    """Predictions of a trained network on raw inputs (scaled here as the training split was)."""

    def __init__(self, network: Network, preprocessing: Preprocessing, spec: dict, versions: dict | None = None):
        self.network, self.preprocessing, self.spec, self.versions = network, preprocessing, spec, versions or {}

    def _forward(self, scaled: np.ndarray) -> np.ndarray:
        return self.network.predict(scaled)
