"""The network as a whole: backward over the stack (fused or not, penalties included) against central differences."""

import numpy as np
import pytest

from trainyard.core import losses
from trainyard.core.gradcheck import numerical_gradient
from trainyard.core.network import Network

HIDDEN = [{"type": "dense", "units": 4, "activation": "tanh", "kernel_regularizer": {"l2": 0.1}},
          {"type": "batch_norm"},
          {"type": "dense", "units": 5, "activation": {"name": "leaky_relu", "alpha": 0.1}}]


def _targets(rng, loss, n, units):
    if loss == "categorical_crossentropy":
        return np.eye(units)[rng.integers(0, units, n)]
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, (n, units)).astype(float)
    return rng.uniform(size=(n, units))


@pytest.mark.parametrize("activation, loss_name, units", [
    ("softmax", "categorical_crossentropy", 3),  # fused: dL/dz straight from the loss
    ("sigmoid", "binary_crossentropy", 1),  # fused
    ("softmax", "mean_squared_error", 3),  # softmax's own Jacobian-vector product
    ("sigmoid", "mean_squared_error", 1),
    ("linear", "mean_absolute_error", 2),  # several regression targets
])
def test_backward_over_the_stack_matches_numerical(activation, loss_name, units):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    output = {"type": "dense", "units": units, "activation": activation, "kernel_regularizer": {"l1": 0.01}}
    net = Network.from_configs(HIDDEN + [output], 3, np.random.default_rng(1), np.float64)
    loss = losses.get(loss_name)
    y = _targets(rng, loss_name, len(x), units)
    fused = loss.fused_with == activation

    def objective():
        return float(loss.per_sample(net.forward(x, training=True), y).mean()) + net.penalty()

    out = net.forward(x, training=True)
    net.backward(loss.fused_gradient(out, y) if fused else loss.gradient(out, y), grad_is_z=fused)
    analytic = net.flat_grads.copy()
    np.testing.assert_allclose(analytic, numerical_gradient(objective, net.flat_params), rtol=1e-5, atol=1e-8)
