"""Layers: Dense (with its activation and kernel regularizer), Dropout and BatchNorm, forward and backward together.

Arrays are batch-first `(n_samples, n_features)`; a Dense kernel is `(n_in, units)`, so
z = a_prev @ W + b. The notes index w_jk^l as (unit j, input k): that is W[k, j] here.
A layer's `params` / `grads` dicts hold its trainable arrays; the Network may rebind
them to views into one flat vector so the optimizer updates everything in a few passes.
Outputs and input gradients are the layer's own buffers, valid until its next call.
"""

from __future__ import annotations

import numpy as np

from trainyard.core import activations, fused, initializers, regularizers
from trainyard.core.buffers import Buffers
from trainyard.core.registry import Registry

LAYERS: Registry["Layer"] = Registry("layer")


class Layer:
    """Base class: `build(n_in, rng, dtype) -> n_out`, `forward(x, training)`, `backward(grad)`."""

    type = ""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}  # non-trainable weights saved with the model
        self.buffers = Buffers()
        self.need_input_grad = True  # the first layer's input gradient is never used

    def build(self, n_in: int, rng: np.random.Generator, dtype) -> int:
        self.rng, self.dtype = rng, np.dtype(dtype)
        return n_in

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    penalised = False  # whether `penalty()` can be non-zero (a layer holding a regularizer)

    def penalty(self) -> float:
        """This layer's weight penalty, added to the loss."""
        return 0.0

    def use_kernels(self) -> None:
        """Switch to the fused kernels of `trainyard.core.fused` where this layer has them (the Network decides when)."""

    def weights(self) -> dict[str, np.ndarray]:
        """Every array needed to rebuild the layer: trainable and state."""
        return {**self.params, **self.state}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Copy arrays in place (so views into a flat parameter vector stay bound)."""
        for name, target in {**self.params, **self.state}.items():
            target[...] = weights[name]

    def get_config(self) -> dict:
        return {"type": self.type}


@LAYERS.register("dense")
class Dense(Layer):
    """a = h(x W + b), with an optional kernel regularizer (`trainyard.core.regularizers`) whose penalty joins the loss."""

    type = "dense"

    def __init__(self, units: int, activation: str | dict = "linear", kernel_initializer: str | dict = "glorot_uniform",
                 bias_initializer: str | dict = "zeros", kernel_regularizer: dict | None = None, use_bias: bool = True):
        super().__init__()
        self.units = int(units)
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.use_bias = bool(use_bias)

    def build(self, n_in, rng, dtype):
        super().build(n_in, rng, dtype)
        self.params["kernel"] = self.kernel_initializer((n_in, self.units), rng, self.dtype)
        if self.use_bias:
            self.params["bias"] = self.bias_initializer((self.units,), rng, self.dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        return self.units

    _column_sum = None  # core.fused's kernel for the bias gradient, or None for np.sum

    def use_kernels(self):
        self._column_sum = fused.kernel("column_sum", self.dtype)
        self.activation.use_kernels(self.dtype)

    def forward(self, x, training=False):
        """z = x W + b, then a = h(z); z stays cached (the output head reads the logits from it)."""
        self.x = x
        z = self.z = self.buffers.get("z", (x.shape[0], self.units), self.dtype)
        np.dot(x, self.params["kernel"], out=z)
        return self.activation.forward(z, training, self.params["bias"] if self.use_bias else None)

    def backward(self, grad, grad_is_z: bool = False):
        """dL/dx from dL/da, or from dL/dz when `grad_is_z` (the output head's δ)."""
        return self.backprop(grad if grad_is_z else self.activation.backward(grad))

    def backprop(self, delta: np.ndarray) -> np.ndarray | None:
        """The notes' backprop step from δ = dL/dz: dL/dW = xᵀ δ (+ the penalty's), dL/db = Σ δ, dL/dx = δ Wᵀ."""
        w, dw = self.params["kernel"], self.grads["kernel"]
        np.dot(self.x.T, delta, out=dw)
        if self.kernel_regularizer is not None:
            self.kernel_regularizer.add_gradient(w, dw, self.buffers.get("penalty", w.shape, self.dtype))
        if self.use_bias:
            if self._column_sum is not None and delta.shape[1] > 1 and delta.flags.c_contiguous:
                self._column_sum(delta, self.grads["bias"])
            else:
                np.sum(delta, axis=0, out=self.grads["bias"])
        if not self.need_input_grad:
            return None
        dx = self.buffers.get("dx", self.x.shape, self.dtype)
        np.dot(delta, w.T, out=dx)
        return dx

    @property
    def penalised(self) -> bool:
        return self.kernel_regularizer is not None

    def penalty(self):
        """The kernel regularizer's penalty for the current kernel (0 without one)."""
        if self.kernel_regularizer is None:
            return 0.0
        w = self.params["kernel"]
        return self.kernel_regularizer.penalty(w, self.buffers.get("penalty", w.shape, self.dtype))

    def get_config(self):
        reg = self.kernel_regularizer.get_config() if self.kernel_regularizer is not None else None
        return {"type": self.type, "units": self.units, "activation": self.activation.get_config(),
                "kernel_initializer": self.kernel_initializer.get_config(),
                "bias_initializer": self.bias_initializer.get_config(),
                "kernel_regularizer": reg, "use_bias": self.use_bias}


@LAYERS.register("dropout")
class Dropout(Layer):
    """Inverted dropout: in training each input is kept with probability 1 - rate and scaled by 1 / (1 - rate);
    at inference it is the identity. The mask comes from the network's Generator."""

    type = "dropout"

    def __init__(self, rate: float):
        super().__init__()
        self.rate = float(rate)

    def forward(self, x, training=False):
        self.active = training and self.rate > 0
        if not self.active:
            return x
        mask = self.mask = self.buffers.get("mask", x.shape, self.dtype)
        self.rng.random(dtype=self.dtype, out=mask)
        np.greater_equal(mask, self.rate, out=mask)
        mask *= 1 / (1 - self.rate)
        out = self.buffers.get("out", x.shape, self.dtype)
        np.multiply(x, mask, out=out)
        return out

    def backward(self, grad):
        if not self.active:
            return grad
        dx = self.buffers.get("dx", grad.shape, self.dtype)
        np.multiply(grad, self.mask, out=dx)
        return dx

    def get_config(self):
        return {"type": self.type, "rate": self.rate}


@LAYERS.register("batch_norm")
class BatchNorm(Layer):
    """y = γ x̂ + β with x̂ = (x - μ) / sqrt(σ² + ε): batch statistics (biased variance) in training, moving
    averages at inference, updated as Keras does: moving = moving · momentum + batch · (1 - momentum)."""

    type = "batch_norm"

    def __init__(self, momentum: float = 0.99, epsilon: float = 0.001):
        super().__init__()
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def build(self, n_in, rng, dtype):
        super().build(n_in, rng, dtype)
        self.params = {"gamma": np.ones(n_in, self.dtype), "beta": np.zeros(n_in, self.dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.state = {"moving_mean": np.zeros(n_in, self.dtype), "moving_variance": np.ones(n_in, self.dtype)}
        return n_in

    def forward(self, x, training=False):
        if training:
            mean, var = x.mean(axis=0), x.var(axis=0)
            m = self.momentum
            self.state["moving_mean"] *= m
            self.state["moving_mean"] += (1 - m) * mean
            self.state["moving_variance"] *= m
            self.state["moving_variance"] += (1 - m) * var
        else:
            mean, var = self.state["moving_mean"], self.state["moving_variance"]
        self.inv_std = (1 / np.sqrt(var + self.epsilon)).astype(self.dtype)
        xhat = self.xhat = self.buffers.get("xhat", x.shape, self.dtype)
        np.subtract(x, mean, out=xhat)
        xhat *= self.inv_std
        y = self.buffers.get("y", x.shape, self.dtype)
        np.multiply(xhat, self.params["gamma"], out=y)
        y += self.params["beta"]
        return y

    def backward(self, grad):
        xhat, n = self.xhat, grad.shape[0]
        np.sum(grad, axis=0, out=self.grads["beta"])
        np.einsum("ij,ij->j", grad, xhat, out=self.grads["gamma"])
        if not self.need_input_grad:
            return None
        # dx = γ / (n σ) · (n dy - Σ dy - x̂ Σ dy x̂), the batch statistics' own gradients included
        dx = self.buffers.get("dx", grad.shape, self.dtype)
        np.multiply(xhat, self.grads["gamma"], out=dx)
        dx += self.grads["beta"]
        np.subtract(grad * n, dx, out=dx)
        dx *= self.params["gamma"] * self.inv_std / n
        return dx

    def get_config(self):
        return {"type": self.type, "momentum": self.momentum, "epsilon": self.epsilon}


def from_config(config: dict) -> Layer:
    """A layer (not yet built) from its `get_config()` or spec form."""
    params = {k: v for k, v in config.items() if k != "type"}
    return LAYERS.get(config["type"])(**params)
