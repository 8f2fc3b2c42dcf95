"""The output head: δ = dL/dz at the output, for every (activation, loss) pair, checked numerically."""

import numpy as np
import pytest

from trainyard.core import heads, layers, losses
from trainyard.core.gradcheck import numerical_gradient


def _output(activation, units, loss_name, seed=0):
    layer = layers.Dense(units, activation)
    layer.build(3, np.random.default_rng(seed), np.float64)
    return layer, heads.head_for(layer, losses.get(loss_name))


def _targets(loss_name, n, units, rng):
    if loss_name == "categorical_crossentropy":
        return np.eye(units)[rng.integers(0, units, n)]
    if loss_name in ("binary_crossentropy", "perceptron"):
        return rng.integers(0, 2, (n, units)).astype(float)
    return rng.normal(size=(n, units))


@pytest.mark.parametrize("activation, loss_name, units, kind", [
    ("softmax", "categorical_crossentropy", 4, heads.SoftmaxCrossEntropy),
    ("sigmoid", "binary_crossentropy", 1, heads.FusedHead),
    ("step", "perceptron", 1, heads.FusedHead),
    ("softmax", "mean_squared_error", 3, heads.OutputHead),
    ("tanh", "mean_absolute_error", 2, heads.OutputHead),
    ("linear", "mean_squared_error", 2, heads.OutputHead),
    ("sigmoid", "binary_crossentropy", 2, heads.FusedHead),
])
def test_each_pair_gets_its_head_and_delta_is_the_gradient_at_z(activation, loss_name, units, kind):
    layer, head = _output(activation, units, loss_name)
    assert type(head) is kind and head.fused == (kind is not heads.OutputHead)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 3)), _targets(loss_name, 5, units, rng)
    z = layer.z = np.empty((5, units))

    def batch_loss():  # the head's loss of the activations of z (and of z itself for a fused pair)
        layer.z = z
        return float(head.per_sample(layer.activation.forward(z, True), y).mean())

    np.dot(x, layer.params["kernel"], out=z)
    a = layer.activation.forward(z, True)
    delta = head.delta(a, y).copy()
    if activation == "step":  # the criterion is piecewise linear in z: its δ is (a - y) / n exactly
        np.testing.assert_array_equal(delta, (a - y) / len(y))
        return
    np.testing.assert_allclose(delta, numerical_gradient(batch_loss, z), rtol=1e-6, atol=1e-9)


def test_a_fused_pair_computes_its_loss_from_the_logits():
    # a saturated softmax: from the clipped a the loss would be capped at -log(1e-7) = 16.1
    layer, head = _output("softmax", 2, "categorical_crossentropy")
    z = np.array([[40.0, -40.0]])
    layer.z = z
    a = layer.activation.forward(z, True)
    np.testing.assert_allclose(head.per_sample(a, np.array([[0.0, 1.0]])), [80.0])
    plain = heads.OutputHead(layer, losses.get("categorical_crossentropy"))
    assert plain.per_sample(a, np.array([[0.0, 1.0]]))[0] == pytest.approx(16.118, abs=1e-3)
