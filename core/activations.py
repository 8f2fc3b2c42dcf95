"""Activation functions, each with its forward and derivative side by side, and their registry.

Derivatives are written in terms of the output `a` (what the notes call a = h(z)), so the
forward pass caches only `a` (leaky ReLU caches its z > 0 mask instead: for alpha >= 0 that
is a > 0). Outputs and gradients live in the activation's own buffers (`trainyard.core.buffers`):
they are valid until its next call.
"""

from __future__ import annotations

import numpy as np

from trainyard.core import fused
from trainyard.core.buffers import Buffers
from trainyard.core.registry import Registry

ACTIVATIONS: Registry["Activation"] = Registry("activation")


class Activation:
    """Base class: `forward(z, training)` returns a = h(z); `backward(grad)` returns dL/dz from dL/da."""

    name = ""

    def __init__(self) -> None:
        self.buffers = Buffers()
        self.a: np.ndarray | None = None

    def forward(self, z: np.ndarray, training: bool = False, bias: np.ndarray | None = None) -> np.ndarray:
        """a = h(z); with `bias`, z becomes z + bias in place first (the Dense layer's pre-activation)."""
        a = self.buffers.get("a", z.shape, z.dtype)
        if bias is None:
            self._forward(z, a)
        elif not self._forward_with_bias(z, bias, a):
            z += bias
            self._forward(z, a)
        self.a = a
        return a

    def _forward_with_bias(self, z: np.ndarray, bias: np.ndarray, a: np.ndarray) -> bool:
        """Add the bias and apply h in one pass (a kernel); False where this activation has no such pass."""
        return False

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dz = self.buffers.get("dz", grad.shape, grad.dtype)
        self._backward(grad, dz)
        return dz

    def _forward(self, z: np.ndarray, a: np.ndarray) -> None:
        raise NotImplementedError

    def _backward(self, grad: np.ndarray, dz: np.ndarray) -> None:
        raise NotImplementedError

    def use_kernels(self, dtype) -> None:
        """Switch to the fused kernels of `trainyard.core.fused`, where this activation has them (bit-identical results)."""

    def get_config(self) -> str | dict:
        return self.name


@ACTIVATIONS.register("step", "heaviside")
class Step(Activation):
    """Heaviside: 1 where z >= 0 (the notes' convention h(0) = 1), else 0. Its derivative is 0 almost everywhere,
    so it trains only through the perceptron rule, whose criterion gives dL/dz directly."""

    name = "step"

    def _forward(self, z, a):
        np.greater_equal(z, 0, out=a)

    def _backward(self, grad, dz):
        dz.fill(0)


@ACTIVATIONS.register("linear", "identity")
class Linear(Activation):
    """Identity: a = z, da/dz = 1; passes arrays through without copying."""

    name = "linear"

    def forward(self, z, training=False, bias=None):
        if bias is not None:
            z += bias
        self.a = z
        return z

    def backward(self, grad):
        return grad


@ACTIVATIONS.register("sigmoid", "logistic")
class Sigmoid(Activation):
    """σ(z) = 1 / (1 + e^-z), computed from e^-|z| so that no exponent overflows; σ' = a (1 - a)."""

    name = "sigmoid"

    def _forward(self, z, a):
        e = self.buffers.get("e", z.shape, z.dtype)
        negative = self.buffers.get("negative", z.shape, bool)
        np.less(z, 0, out=negative)
        np.abs(z, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)  # e^-|z| in (0, 1]
        np.add(e, 1, out=a)
        np.reciprocal(a, out=a)  # σ(|z|)
        np.multiply(a, e, out=a, where=negative)  # σ(z) = e^z / (1 + e^z) for z < 0, exact for tiny values

    def _backward(self, grad, dz):
        np.subtract(1, self.a, out=dz)
        dz *= self.a
        dz *= grad


@ACTIVATIONS.register("tanh")
class Tanh(Activation):
    """tanh(z); tanh' = 1 - a²."""

    name = "tanh"

    def _forward(self, z, a):
        np.tanh(z, out=a)

    def _backward(self, grad, dz):
        np.square(self.a, out=dz)
        np.subtract(1, dz, out=dz)
        dz *= grad


@ACTIVATIONS.register("relu")
class ReLU(Activation):
    """max(0, z); derivative 1 where a > 0, else 0 (0 at z = 0, as Keras and scikit-learn)."""

    name = "relu"
    _kernels = None  # (forward, backward) from core.fused, or None for the ufuncs

    def use_kernels(self, dtype):
        self._kernels = tuple(fused.kernel(name, dtype) for name in ("relu", "relu_backward", "bias_relu"))

    def _forward_with_bias(self, z, bias, a):
        if self._kernels is None or not z.flags.c_contiguous:
            return False
        self._kernels[2](z, bias, a)
        return True

    def _forward(self, z, a):
        if self._kernels is not None and z.flags.c_contiguous:
            self._kernels[0](z, a)
            return
        np.maximum(z, 0, out=a)

    def _backward(self, grad, dz):
        if self._kernels is not None and grad.flags.c_contiguous:
            self._kernels[1](grad, self.a, dz)
            return
        active = self.buffers.get("active", grad.shape, bool)
        np.greater(self.a, 0, out=active)
        np.multiply(grad, active, out=dz)


@ACTIVATIONS.register("leaky_relu", "leakyrelu")
class LeakyReLU(Activation):
    """z where z > 0, else alpha z; derivative 1 or alpha."""

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        self.alpha = float(alpha)

    def _forward(self, z, a):
        positive = self.buffers.get("positive", z.shape, bool)
        np.greater(z, 0, out=positive)
        np.multiply(z, self.alpha, out=a)
        np.copyto(a, z, where=positive)
        self.positive = positive

    def _backward(self, grad, dz):
        np.multiply(grad, self.alpha, out=dz)
        np.copyto(dz, grad, where=self.positive)

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}


@ACTIVATIONS.register("softmax")
class Softmax(Activation):
    """e^z_j / Σ_k e^z_k over each row, shifted by the row's max so nothing overflows.

    Its Jacobian-vector product is a ⊙ (g - Σ g a); with categorical cross-entropy the
    output head (`trainyard.core.heads`) supplies dL/dz = a - y directly and this is skipped. The
    forward pass keeps the shifted logits z - max z and the row sums Σ e^(z - max z), from
    which that head computes the loss without a second pass over z.
    """

    name = "softmax"
    _shift = _normalise = None  # core.fused's kernels for the steps before and after exp, or None for the ufuncs

    def use_kernels(self, dtype):
        self._shift = fused.kernel("shift_by_row_max", dtype)
        self._normalise = fused.kernel("normalise_rows", dtype)

    def _forward(self, z, a):
        total = self.total = self.buffers.get("total", (z.shape[0], 1), z.dtype)
        shifted = self.shifted = self.buffers.get("shifted", z.shape, z.dtype)
        if self._shift is not None and z.flags.c_contiguous:
            self._shift(z, total, shifted)
        else:
            np.maximum.reduce(z, axis=1, keepdims=True, out=total)  # z.max(axis=1) without its wrapper's overhead
            np.subtract(z, total, out=shifted)
        np.exp(shifted, out=a)
        if self._normalise is not None and a.shape[1] <= fused.MAX_ROW:
            self._normalise(a, total)
            return
        np.add.reduce(a, axis=1, keepdims=True, out=total)
        np.divide(a, total, out=a)

    def _backward(self, grad, dz):
        row = self.buffers.get("row", (grad.shape[0], 1), grad.dtype)
        np.multiply(grad, self.a, out=dz)
        np.sum(dz, axis=1, keepdims=True, out=row)
        np.subtract(grad, row, out=dz)
        dz *= self.a


def get(config: str | dict) -> Activation:
    """An activation from its spec form: `"relu"` or `{"name": "leaky_relu", "alpha": 0.2}`."""
    return ACTIVATIONS.resolve(config)
