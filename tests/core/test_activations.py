"""Activations: derivatives agree with central differences; no overflow at |z| ~ 1e4; registry names."""

import numpy as np
import pytest

from trainyard.core import activations
from trainyard.core.gradcheck import numerical_gradient
from trainyard.core.spec import ACTIVATIONS as SPEC_ACTIVATIONS

SMOOTH = ["linear", "sigmoid", "tanh", "relu", {"name": "leaky_relu", "alpha": 0.2}, "softmax"]


@pytest.mark.parametrize("config", SMOOTH, ids=str)
def test_backward_matches_numerical_gradient(config):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4)) * 2
    z[np.abs(z) < 0.05] = 0.3  # keep clear of relu's kink, where the derivative is one-sided
    weights = rng.normal(size=z.shape)  # L = Σ weights ⊙ h(z), so dL/da = weights
    act = activations.get(config)

    def loss():
        return float((act.forward(z) * weights).sum())

    numeric = numerical_gradient(loss, z)
    act.forward(z)
    np.testing.assert_allclose(act.backward(weights), numeric, rtol=1e-6, atol=1e-8)


def test_step_is_heaviside_with_h0_1_and_zero_derivative():
    act = activations.get("heaviside")
    z = np.array([[-2.0, -1e-9, 0.0, 3.0]])
    np.testing.assert_array_equal(act.forward(z), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(act.backward(np.ones_like(z)), 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [c if isinstance(c, str) else c["name"] for c in SMOOTH] + ["step"])
def test_extreme_inputs_are_finite_without_warnings(name, dtype):
    # pytest turns any overflow RuntimeWarning into an error
    z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=dtype)
    act = activations.get(name)
    a = act.forward(z)
    assert np.isfinite(a).all() and a.dtype == dtype
    assert np.isfinite(act.backward(np.ones_like(z))).all()


def test_sigmoid_and_softmax_values():
    s = activations.get("logistic")
    a = s.forward(np.array([[-1e4, -30.0, 0.0, 30.0, 1e4]]))
    np.testing.assert_allclose(a, [[0.0, 1 / (1 + np.exp(30.0)), 0.5, 1 / (1 + np.exp(-30.0)), 1.0]], rtol=1e-12)
    assert a[0, 1] > 0  # tiny probabilities are kept, not rounded to 0
    sm = activations.get("softmax").forward(np.array([[1e4, 1e4, -1e4], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(sm.sum(axis=1), 1)
    np.testing.assert_allclose(sm[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(sm[1], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())


def test_registry_covers_the_spec_names_and_round_trips_configs():
    assert activations.ACTIVATIONS.names() == sorted(SPEC_ACTIVATIONS)
    for name in SPEC_ACTIVATIONS:
        act = activations.get(name)
        assert activations.get(act.get_config()).get_config() == act.get_config()
    assert activations.get({"name": "leaky_relu", "alpha": 0.3}).alpha == 0.3
    with pytest.raises(KeyError, match="valid: leaky_relu, linear"):
        activations.get("swish")
