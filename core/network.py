"""A feed-forward network: the spec's layers in order, forward and backward over the stack.

All trainable parameters live in one flat vector (and their gradients in another);
each layer's `params` / `grads` are views into them, so an optimizer step is a few
vectorised passes however many layers there are.
"""

from __future__ import annotations

import numpy as np

from trainyard.core import fused
from trainyard.core import layers as layer_lib
from trainyard.core.layers import Dense, Layer


class Network:
    """Layers built for `n_features` inputs; `params` / `grads` are parallel lists for the optimizer."""

    def __init__(self, layers: list[Layer], n_features: int, rng: np.random.Generator, dtype=np.float32):
        if not layers or not isinstance(layers[-1], Dense):
            raise ValueError("the last layer must be dense (it is the output)")
        self.layers, self.n_features, self.dtype = layers, int(n_features), np.dtype(dtype)
        width = self.n_features
        for layer in layers:
            width = layer.build(width, rng, self.dtype)
        layers[0].need_input_grad = False  # dL/dx of the data is never used: skip that matrix product
        self._penalised = [layer for layer in layers if layer.penalised]  # the loss adds only these (once a batch)
        self.penalised = bool(self._penalised)
        self._flatten()
        self.uses_kernels = fused.wanted(self.flat_params.size)  # a big model: core.fused's kernels where layers have them
        if self.uses_kernels:
            for layer in layers:
                layer.use_kernels()

    @classmethod
    def from_configs(cls, configs: list[dict], n_features: int, rng: np.random.Generator, dtype=np.float32) -> "Network":
        """Build from layer configs: the spec's `model.layers` dumped to JSON, or `layer_configs()`."""
        return cls([layer_lib.from_config(c) for c in configs], n_features, rng, dtype)

    def _flatten(self) -> None:
        named = [(layer, name) for layer in self.layers for name in layer.params]
        total = sum(layer.params[name].size for layer, name in named)
        self.flat_params = np.empty(total, self.dtype)
        self.flat_grads = np.zeros(total, self.dtype)
        offset = 0
        for layer, name in named:
            p = layer.params[name]
            view = self.flat_params[offset:offset + p.size].reshape(p.shape)
            view[...] = p
            layer.params[name] = view
            layer.grads[name] = self.flat_grads[offset:offset + p.size].reshape(p.shape)
            offset += p.size
        self.params, self.grads = [self.flat_params], [self.flat_grads]

    @property
    def output_layer(self) -> Dense:
        return self.layers[-1]

    @property
    def n_outputs(self) -> int:
        return self.output_layer.units

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The output activations (the last layer's buffer: copy it to keep it past the next call)."""
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backprop(self, delta: np.ndarray) -> None:
        """Backpropagation: fill `grads` from δ = dL/dz at the output layer (`trainyard.core.heads` gives it), last layer first."""
        grad = self.output_layer.backprop(delta)
        for layer in reversed(self.layers[:-1]):
            grad = layer.backward(grad)

    def backward(self, grad: np.ndarray, grad_is_z: bool = False) -> None:
        """Fill `grads` from dL/d(output), or from dL/dz of the output layer when `grad_is_z`."""
        self.backprop(grad if grad_is_z else self.output_layer.activation.backward(grad))

    def penalty(self) -> float:
        """The weight penalties of all layers (part of the loss)."""
        return sum((layer.penalty() for layer in self._penalised), 0.0)

    def predict(self, x: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Inference-mode outputs `(n, n_outputs)` as a new array, computed in chunks to bound memory."""
        x = np.asarray(x, dtype=self.dtype)
        out = np.empty((len(x), self.n_outputs), self.dtype)
        for start in range(0, len(x), chunk):
            out[start:start + chunk] = self.forward(x[start:start + chunk], training=False)
        return out

    def get_weights(self) -> list[dict[str, np.ndarray]]:
        """Copies of every layer's arrays (trainable and state), e.g. to restore the best epoch."""
        return [{k: v.copy() for k, v in layer.weights().items()} for layer in self.layers]

    def set_weights(self, weights: list[dict[str, np.ndarray]]) -> None:
        for layer, w in zip(self.layers, weights, strict=True):
            layer.set_weights(w)

    def layer_configs(self) -> list[dict]:
        return [layer.get_config() for layer in self.layers]
