"""Losses: per-sample values and the gradient of the batch mean, with the fused output gradients.

Conventions follow Keras: a sample's loss is the mean over its outputs (a sum over
classes for categorical cross-entropy and the perceptron criterion), the batch loss the
mean over samples (so the training loop can weight each batch by its size).
`a` is the output layer's activation, `y` the encoded target, both `(n, k)`.
When the output activation is the one a loss is fused with (`fused_with`), the loss
returns dL/dz for the output layer's pre-activation directly: a - y for sigmoid +
binary cross-entropy, softmax + categorical cross-entropy and step + perceptron rule.
Then the caller also passes that pre-activation `z` to `per_sample`, and the
cross-entropies are computed from it, as Keras's `fit` and `evaluate` do for a sigmoid or
softmax output (its `_keras_logits`): no clipping, so -log p is not capped at 16.1.
"""

from __future__ import annotations

import numpy as np

from trainyard.core.buffers import Buffers
from trainyard.core.registry import Registry

LOSSES: Registry["Loss"] = Registry("loss")
EPSILON = 1e-7  # Keras's backend epsilon: probabilities are clipped to [EPSILON, 1 - EPSILON]


class Loss:
    """Base class; subclasses define `per_sample` and `gradient` next to each other."""

    name = ""
    fused_with: str | None = None

    def __init__(self) -> None:
        self.buffers = Buffers()

    def per_sample(self, a: np.ndarray, y: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """Loss of each sample, shape `(n,)`; `z` only when `a` came from the `fused_with` activation of `z`."""
        raise NotImplementedError

    def gradient(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dL/da of the batch-mean loss (a buffer, valid until the next call)."""
        raise NotImplementedError

    def fused_gradient(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dL/dz of the batch-mean loss through the `fused_with` activation: (a - y) scaled by `delta_scale`."""
        g = self.buffers.get("grad", a.shape, a.dtype)
        np.subtract(a, y, out=g)
        g *= self.delta_scale(a)
        return g

    def delta_scale(self, a: np.ndarray) -> float:
        """What δ = a - y is divided by, as this loss averages: here over outputs and samples."""
        return 1.0 / a.size

    def _diff(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        d = self.buffers.get("diff", a.shape, a.dtype)
        np.subtract(a, y, out=d)
        return d

    def _clipped(self, a: np.ndarray) -> np.ndarray:
        p = self.buffers.get("p", a.shape, a.dtype)
        np.clip(a, EPSILON, 1 - EPSILON, out=p)
        return p


@LOSSES.register("mean_squared_error", "mse")
class MeanSquaredError(Loss):
    """mean_j (a_j - y_j)²: Keras's MSE, *without* the notes' factor ½ (so the gradient is 2 (a - y) / size)."""

    name = "mean_squared_error"

    def per_sample(self, a, y, z=None):
        d = self._diff(a, y)
        return np.einsum("ij,ij->i", d, d) / a.shape[1]

    def gradient(self, a, y):
        g = self._diff(a, y)
        g *= 2.0 / a.size
        return g


@LOSSES.register("mean_absolute_error", "mae")
class MeanAbsoluteError(Loss):
    """mean_j |a_j - y_j|; gradient sign(a - y) / size (0 where a == y)."""

    name = "mean_absolute_error"

    def per_sample(self, a, y, z=None):
        d = self._diff(a, y)
        np.abs(d, out=d)
        return d.mean(axis=1)

    def gradient(self, a, y):
        g = self._diff(a, y)
        np.sign(g, out=g)
        g *= 1.0 / a.size
        return g


@LOSSES.register("binary_crossentropy", "bce")
class BinaryCrossentropy(Loss):
    """-mean_j [y log p + (1 - y) log(1 - p)], p = a clipped to [1e-7, 1 - 1e-7]; fused with sigmoid."""

    name = "binary_crossentropy"
    fused_with = "sigmoid"

    def per_sample(self, a, y, z=None):
        if z is not None:  # from the logits: (max(z, 0) - z y) + log(1 + e^-|z|), TensorFlow's stable form
            v = self.buffers.get("logits", z.shape, z.dtype)
            np.maximum(z, 0, out=v)
            v -= z * y  # first, so a right, confident sample keeps its tiny log term exactly
            v += np.log1p(np.exp(-np.abs(z)))
            return v.mean(axis=1)
        p = self._clipped(a)
        log_q = np.log1p(-p)
        np.log(p, out=p)
        # y log p + (1 - y) log q = y (log p - log q) + log q
        p -= log_q
        p *= y
        p += log_q
        return -p.mean(axis=1)

    def gradient(self, a, y):
        p = self._clipped(a)
        g = self.buffers.get("grad", a.shape, a.dtype)
        # d/dp = (p - y) / (p (1 - p)); zero where the clip is active, as the clip's derivative is
        np.subtract(p, y, out=g)
        g /= p * (1 - p)
        g[(a < EPSILON) | (a > 1 - EPSILON)] = 0
        g *= 1.0 / a.size
        return g


@LOSSES.register("categorical_crossentropy", "cce")
class CategoricalCrossentropy(Loss):
    """-Σ_j y_j log p_j with p = a / Σa clipped to [1e-7, 1 - 1e-7] (Keras); fused with softmax: dL/dz = (a - y) / n."""

    name = "categorical_crossentropy"
    fused_with = "softmax"

    def per_sample(self, a, y, z=None):
        if z is not None:  # from the logits, shifted by their row max as the softmax does
            shifted = self.buffers.get("logits", z.shape, z.dtype)
            np.subtract(z, z.max(axis=1, keepdims=True), out=shifted)
            return self.from_shifted_logits(shifted, np.exp(shifted).sum(axis=1, keepdims=True), y)
        p = self.buffers.get("p", a.shape, a.dtype)
        np.divide(a, a.sum(axis=1, keepdims=True), out=p)
        np.clip(p, EPSILON, 1 - EPSILON, out=p)
        np.log(p, out=p)
        return -np.einsum("ij,ij->i", y, p)

    def from_shifted_logits(self, shifted: np.ndarray, total: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample -Σ y log_softmax(z) = Σ y (log Σ e^s - s) from s = z - max z and its row sums Σ e^s."""
        out = self.buffers.get("from_logits", shifted.shape, shifted.dtype)
        np.subtract(np.log(total), shifted, out=out)
        return np.einsum("ij,ij->i", y, out)

    def gradient(self, a, y):
        # L = -Σ y log a + (Σ y) log Σ a, so dL/da_j = -y_j / a_j + Σy / Σa (clip's derivative applied)
        g = self.buffers.get("grad", a.shape, a.dtype)
        np.divide(-y, self._clipped(a), out=g)
        g[(a < EPSILON) | (a > 1 - EPSILON)] = 0
        g += y.sum(axis=1, keepdims=True) / a.sum(axis=1, keepdims=True)
        g *= 1.0 / a.shape[0]
        return g

    def delta_scale(self, a):
        return 1.0 / a.shape[0]  # summed over classes, mean over samples


@LOSSES.register("perceptron")
class PerceptronCriterion(Loss):
    """The perceptron criterion Σ_j (a_j - y_j) z_j: each misclassified unit's |z|, 0 when right.

    With the step output it is fused: dL/dz = (a - y) / n, so one sample's SGD step is
    the perceptron learning rule w ← w + η (y - a) x, unit by unit.
    """

    name = "perceptron"
    fused_with = "step"

    def per_sample(self, a, y, z=None):
        if z is None:
            raise ValueError("the perceptron criterion needs the pre-activation z")
        return np.einsum("ij,ij->i", self._diff(a, y), z)

    def gradient(self, a, y):
        raise ValueError("the perceptron criterion trains only a step output (its fused gradient)")

    def delta_scale(self, a):
        return 1.0 / a.shape[0]


def get(name: str) -> Loss:
    """A loss from its canonical (or alias) name."""
    return LOSSES.resolve(name)
