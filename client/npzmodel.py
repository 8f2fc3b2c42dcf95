"""Use a downloaded numpy-backend model file (`.npz`) with numpy alone — no trainyard service, no `core`.

    from trainyard.client.npzmodel import load
    model = load("JOB_ID.npz")
    model.predict([[5.1, 3.5, 1.4, 0.2]])        # original labels (or values, for regression)
    model.predict_proba([[5.1, 3.5, 1.4, 0.2]])  # (n, k) class probabilities, columns in model.classes order

The file is a plain `.npz` read with `allow_pickle=False`: weight arrays `layers.<i>.<name>`
and a `trainyard` member, a JSON string with the layers, the dtype and the preprocessing
(the scaling fitted on the training split, and the class labels). Inputs are raw rows: the
scaling is applied here, as the service applies it, and the forward pass is the engine's
inference pass (dropout off, batch norm with its moving averages), so the answers equal the
service's `predict` (the same operations in the same dtype).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

FORMAT = "trainyard-npz"
FORMAT_VERSIONS = (1,)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))  # e^-|z| in (0, 1]: nothing overflows
    a = 1 / (1 + e)
    return np.where(z < 0, a * e, a)  # e^z / (1 + e^z) for z < 0


def _softmax(z: np.ndarray) -> np.ndarray:
    a = np.exp(z - z.max(axis=1, keepdims=True))
    return a / a.sum(axis=1, keepdims=True)


# activation name → h(z), as trainyard's engine computes it (step: 1 where z >= 0)
ACTIVATIONS = {
    "step": lambda z, alpha: (z >= 0).astype(z.dtype),
    "linear": lambda z, alpha: z,
    "sigmoid": lambda z, alpha: _sigmoid(z),
    "tanh": lambda z, alpha: np.tanh(z),
    "relu": lambda z, alpha: np.maximum(z, 0),
    "leaky_relu": lambda z, alpha: np.where(z > 0, z, z * alpha),
    "softmax": lambda z, alpha: _softmax(z),
}


class NpzModel:
    """A trainyard numpy-engine network on raw inputs: `predict`, `predict_proba`, `outputs`."""

    def __init__(self, header: dict, arrays: dict[str, np.ndarray]):
        self.header = header
        pre = header["preprocessing"]
        self.task: str = pre["task"]
        self.n_features: int = int(header["n_features"])
        self.classes: list | None = pre.get("classes")
        self.feature_names: list | None = pre.get("feature_names")
        self.spec: dict = header.get("spec") or {}
        self.dtype = np.dtype(header["dtype"])
        self._scaling = None
        if pre.get("scaler") is not None:
            self._scaling = (np.asarray(pre["offset"], np.float64), np.asarray(pre["scale"], np.float64))
        self._layers = [self._layer(i, config, arrays) for i, config in enumerate(header["layers"])]

    def _layer(self, i: int, config: dict, arrays: dict[str, np.ndarray]) -> tuple:
        kind = config.get("type")
        w = {k.split(".", 2)[2]: v for k, v in arrays.items() if k.startswith(f"layers.{i}.")}
        if kind == "dense":
            act = config.get("activation", "linear")
            name, alpha = (act, 0.0) if isinstance(act, str) else (act.get("name"), float(act.get("alpha", 0.01)))
            if name not in ACTIVATIONS:
                raise ValueError(f"layer {i}: unknown activation {name!r}")
            return "dense", w["kernel"], w.get("bias"), name, alpha
        if kind == "batch_norm":
            inv_std = (1 / np.sqrt(w["moving_variance"] + float(config.get("epsilon", 0.001)))).astype(self.dtype)
            return "batch_norm", w["moving_mean"], inv_std, w["gamma"], w["beta"]
        if kind == "dropout":
            return ("dropout",)
        raise ValueError(f"layer {i}: unknown layer type {kind!r}")

    def outputs(self, x: Any) -> np.ndarray:
        """The output layer's activations `(n, n_outputs)` for raw (unscaled) rows."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"inputs must be rows of {self.n_features} numbers, not an array of shape {x.shape}")
        if self._scaling is not None:
            x = (x - self._scaling[0]) / self._scaling[1]
        a = x.astype(self.dtype)
        for layer in self._layers:
            if layer[0] == "dense":
                _, kernel, bias, name, alpha = layer
                z = np.dot(a, kernel)
                if bias is not None:
                    z += bias
                a = ACTIVATIONS[name](z, alpha)
            elif layer[0] == "batch_norm":
                _, mean, inv_std, gamma, beta = layer
                a = (a - mean) * inv_std * gamma + beta
        return a

    def predict(self, x: Any) -> np.ndarray:
        """Original class labels (argmax; p > 0.5 for one output unit), or the values: `(n,)` for one output."""
        out = self.outputs(x)
        if self.task == "classification":
            index = out.argmax(axis=1) if out.shape[1] > 1 else (out[:, 0] > 0.5).astype(np.int64)
            return np.asarray(self.classes)[index]
        return out[:, 0] if out.shape[1] == 1 else out

    def predict_proba(self, x: Any) -> np.ndarray:
        """`(n, k)` class probabilities in the order of `classes`: `[1 - p, p]` for one unit (p clipped to
        [0, 1]); k units clipped at 0 and normalised to sum to 1."""
        if self.task != "classification":
            raise ValueError("probabilities exist for classification models only")
        out = self.outputs(x)
        if out.shape[1] == 1:
            p = np.clip(out[:, 0], 0.0, 1.0)
            return np.stack([1 - p, p], axis=1)
        out = np.clip(out, 0.0, None)
        total = out.sum(axis=1, keepdims=True)
        return np.divide(out, total, out=np.full_like(out, 1.0 / out.shape[1]), where=total > 0)


def load(file: str | os.PathLike | Any) -> NpzModel:
    """An `NpzModel` from a path or a binary file object of a trainyard `.npz` model file (never unpickles)."""
    with np.load(file, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    header = arrays.pop("trainyard", None)
    if header is None or header.shape != () or header.dtype.kind != "U":
        raise ValueError("not a trainyard model file: no 'trainyard' header")
    meta = json.loads(str(header[()]))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("format_version") not in FORMAT_VERSIONS:
        raise ValueError(f"not a trainyard numpy model file of a known version ({meta.get('format')!r} "
                         f"{meta.get('format_version')!r})" if isinstance(meta, dict) else "not a trainyard model file")
    return NpzModel(meta, arrays)
