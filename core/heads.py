"""The output head: the output layer's activation and the loss as one object, where backprop starts.

Backpropagation starts from δ = dL/dz, the loss's gradient at the output layer's
pre-activation z. For three (activation, loss) pairs the chain rule through the activation
collapses to the notes' δ = a - y (divided by what the loss averages over, see
`trainyard.core.losses`): sigmoid + binary cross-entropy, softmax + categorical cross-entropy, and
step + the perceptron criterion (then one SGD step is the perceptron learning rule). Such a
pair also computes its loss from the logits z, as Keras's `fit` does, so a saturated output
is not clipped. Any other pair applies the chain rule, δ = h'(z) ⊙ dL/da.

The trainer asks its head for the per-sample losses and for δ, and hands δ to
`Network.backprop`; nothing else needs to know whether a pair is fused.
"""

from __future__ import annotations

import numpy as np

from trainyard.core import fused
from trainyard.core.layers import Dense
from trainyard.core.losses import Loss


class OutputHead:
    """Any activation with any loss: the loss from the activations a, δ by the chain rule."""

    fused = False

    def __init__(self, layer: Dense, loss: Loss):
        self.layer, self.activation, self.loss = layer, layer.activation, loss

    def use_kernels(self, dtype) -> None:
        """Switch to the fused kernels of `trainyard.core.fused` where this head has them (bit-identical results)."""

    def per_sample(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Loss of each sample `(n,)` for the layer's last forward pass, which gave `a`."""
        return self.loss.per_sample(a, y)

    def delta(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        """δ = dL/dz of the batch-mean loss at the output layer (a buffer, valid until the next call)."""
        return self.activation.backward(self.loss.gradient(a, y))


class FusedHead(OutputHead):
    """An activation and the loss fused with it (`Loss.fused_with`): δ = a - y scaled, the loss from z."""

    fused = True
    _difference = None  # core.fused's (a - y) * scale kernel, or None for Loss.fused_gradient's ufuncs

    def use_kernels(self, dtype):
        self._difference = fused.kernel("scaled_difference", dtype)

    def per_sample(self, a, y):
        """Loss of each sample from the logits z the layer kept (no clipping of a saturated output)."""
        return self.loss.per_sample(a, y, self.layer.z)

    def delta(self, a, y):
        """δ = (a - y) scaled as the loss averages (`Loss.delta_scale`): the chain rule through the pair, collapsed."""
        if self._difference is None or a.dtype != y.dtype or not (a.flags.c_contiguous and y.flags.c_contiguous):
            return self.loss.fused_gradient(a, y)
        d = self.loss.buffers.get("grad", a.shape, a.dtype)
        self._difference(a, y, a.dtype.type(self.loss.delta_scale(a)), d)
        return d


class SoftmaxCrossEntropy(FusedHead):
    """Softmax + categorical cross-entropy: the loss from the shifted logits the softmax kept (same values)."""

    def per_sample(self, a, y):
        """Loss of each sample from the shifted logits and row sums the softmax kept (same values as from z)."""
        return self.loss.from_shifted_logits(self.activation.shifted, self.activation.total, y)


# Pairs with a head of their own; other fused pairs get FusedHead, the rest OutputHead.
SPECIAL: dict[tuple[str, str], type[FusedHead]] = {("softmax", "categorical_crossentropy"): SoftmaxCrossEntropy}


def head_for(layer: Dense, loss: Loss, kernels: bool = False) -> OutputHead:
    """The head for this output layer and loss (with `trainyard.core.fused`'s kernels when `kernels`)."""
    pair = (layer.activation.name, loss.name)
    fused_pair = loss.fused_with == layer.activation.name
    head = SPECIAL.get(pair, FusedHead)(layer, loss) if fused_pair else OutputHead(layer, loss)
    if kernels:
        head.use_kernels(layer.dtype)
    return head
