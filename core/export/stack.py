"""A trained model as a plain dense stack (weights and activations in inference form), from any backend's file.

All three backends train the same kind of network: dense layers, batch normalisation and
dropout. `DenseStack` holds what inference needs of it (dropout is gone, batch norm keeps
its moving averages) plus the preprocessing, so one exporter serves every backend. Nothing
here imports TensorFlow: a Keras file carries a numpy-engine copy of its weights
(`trainyard.core.backends.keras_modelfile.WEIGHTS_MEMBER`), written when the model was saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from trainyard.core.datasets.prepared import Preprocessing
from trainyard.core.errors import ModelFileError


@dataclass
class DenseLayer:
    """a = h(x @ kernel + bias); `activation` is a spec name (step, linear, sigmoid, tanh, relu, leaky_relu, softmax)."""

    kernel: np.ndarray
    bias: np.ndarray | None
    activation: str
    alpha: float = 0.0  # leaky_relu's slope below 0


@dataclass
class BatchNormLayer:
    """Inference form: y = (x - mean) / sqrt(variance + epsilon) * gamma + beta."""

    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    epsilon: float


@dataclass
class DenseStack:
    """Raw inputs → preprocessing (float64) → layers in `dtype` → the output layer's activations."""

    preprocessing: Preprocessing
    dtype: np.dtype
    layers: list[DenseLayer | BatchNormLayer] = field(default_factory=list)
    source: str = ""  # the backend whose file this came from

    @property
    def n_outputs(self) -> int:
        return [layer for layer in self.layers if isinstance(layer, DenseLayer)][-1].kernel.shape[1]


def from_network(network: Any, preprocessing: Preprocessing, source: str = "numpy") -> DenseStack:
    """The stack of a numpy-engine `trainyard.core.network.Network` (its dropout layers left out)."""
    from trainyard.core.layers import BatchNorm, Dense

    layers: list[DenseLayer | BatchNormLayer] = []
    for layer in network.layers:
        if isinstance(layer, Dense):
            act = layer.activation
            layers.append(DenseLayer(layer.params["kernel"], layer.params.get("bias"), act.name,
                                     float(getattr(act, "alpha", 0.0))))
        elif isinstance(layer, BatchNorm):
            layers.append(BatchNormLayer(layer.params["gamma"], layer.params["beta"], layer.state["moving_mean"],
                                         layer.state["moving_variance"], layer.epsilon))
    return DenseStack(preprocessing, np.dtype(network.dtype), layers, source)


# scikit-learn's activation names → the spec's
_SKLEARN_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                        "softmax": "softmax"}


def from_mlp(mlp: Any, preprocessing: Preprocessing) -> DenseStack:
    """The stack of a fitted MLPClassifier / MLPRegressor (hidden layers share `activation`, the last uses
    `out_activation_`), computed in float64 as the model file's Pipeline computes it."""
    layers: list[DenseLayer | BatchNormLayer] = []
    last = len(mlp.coefs_) - 1
    for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_)):
        name = mlp.out_activation_ if i == last else mlp.activation
        if name not in _SKLEARN_ACTIVATIONS:
            raise ModelFileError(f"scikit-learn activation {name!r} has no export")
        # float64 whatever the weights' dtype: the Pipeline's float64 rows promote a float32 model's products
        layers.append(DenseLayer(np.asarray(w, np.float64), np.asarray(b, np.float64), _SKLEARN_ACTIVATIONS[name]))
    return DenseStack(preprocessing, np.dtype(np.float64), layers, "sklearn")


def _numpy_stack(model: bytes) -> DenseStack:
    from trainyard.core.modelfile import load_model

    predictor = load_model(model)
    return from_network(predictor.network, predictor.preprocessing, "numpy")


def _sklearn_stack(model: bytes) -> DenseStack:
    from trainyard.core.backends.sklearn_backend import load_model

    predictor = load_model(model)
    return from_mlp(predictor.estimator, predictor.preprocessing)


def _keras_stack(model: bytes) -> DenseStack:
    from trainyard.core.backends.keras_modelfile import numpy_copy

    predictor = numpy_copy(model)
    return from_network(predictor.network, predictor.preprocessing, "keras")


# model file format → how to read its stack (none of them imports TensorFlow)
READERS: dict[str, Callable[[bytes], DenseStack]] = {"npz": _numpy_stack, "skops": _sklearn_stack,
                                                      "keras": _keras_stack}


def read_stack(model: bytes) -> DenseStack:
    """The dense stack of any trainyard model file (ModelFileError if it is not one, or has no weights copy)."""
    from trainyard.core.backends import sniff_format

    return READERS[sniff_format(model)](model)
