"""Layers: every gradient (weights, biases, inputs, penalties, dropout, batch norm) checked numerically."""

import numpy as np
import pytest

from trainyard.core import layers
from trainyard.core.gradcheck import numerical_gradient


def _built(layer, n_in, seed=0):
    layer.build(n_in, np.random.default_rng(seed), np.float64)
    return layer


def _check(layer, x, training=True, reset=lambda: None):
    """Compare backward() with central differences of L = Σ g ⊙ forward(x) + penalty for x and every param."""
    g = np.random.default_rng(5).normal(size=(x.shape[0], layer.forward(x, training).shape[1]))

    def loss():
        reset()
        return float((layer.forward(x, training) * g).sum()) + layer.penalty()

    reset()
    layer.forward(x, training)
    dx = layer.backward(g.copy())
    analytic = {name: grad.copy() for name, grad in layer.grads.items()}
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-5, atol=1e-8)
    for name, param in layer.params.items():
        np.testing.assert_allclose(analytic[name], numerical_gradient(loss, param), rtol=1e-5, atol=1e-8,
                                   err_msg=name)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "linear"])
def test_dense_gradients(activation):
    x = np.random.default_rng(1).normal(size=(4, 3))
    _check(_built(layers.Dense(5, activation, bias_initializer="ones"), 3), x)


@pytest.mark.parametrize("reg", [{"l2": 0.3}, {"l1": 0.2}, {"l1": 0.1, "l2": 0.05}])
def test_dense_penalty_value_and_gradient(reg):
    layer = _built(layers.Dense(2, "tanh", kernel_regularizer=reg), 3)
    w = layer.params["kernel"]
    expected = reg.get("l1", 0) * np.abs(w).sum() + reg.get("l2", 0) * (w**2).sum()  # Keras's L1L2: no ½
    assert layer.penalty() == pytest.approx(expected)
    _check(layer, np.random.default_rng(2).normal(size=(3, 3)))


def test_dense_forward_is_x_w_plus_b():
    layer = _built(layers.Dense(2, "linear", use_bias=True), 2)
    layer.params["kernel"][...] = [[1.0, 2.0], [3.0, 4.0]]
    layer.params["bias"][...] = [0.5, -0.5]
    np.testing.assert_allclose(layer.forward(np.array([[1.0, 1.0]])), [[4.5, 5.5]])
    assert "bias" not in _built(layers.Dense(2, use_bias=False), 2).params


def test_dropout_gradient_with_a_fixed_mask():
    layer = _built(layers.Dropout(0.4), 6)
    reset = lambda: setattr(layer, "rng", np.random.default_rng(7))  # noqa: E731 — the same mask every call
    x = np.random.default_rng(3).normal(size=(5, 6))
    _check(layer, x, reset=reset)
    reset()
    out = layer.forward(x, training=True)
    kept = out != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(out[kept], x[kept] / 0.6)  # inverted dropout scales what it keeps


def test_dropout_is_identity_at_inference_and_keeps_the_expected_fraction():
    layer = _built(layers.Dropout(0.25), 100)
    x = np.ones((200, 100))
    assert layer.forward(x, training=False) is x
    out = layer.forward(x, training=True)
    assert (out != 0).mean() == pytest.approx(0.75, abs=0.02)
    assert out.mean() == pytest.approx(1.0, abs=0.03)


def test_batch_norm_gradients_in_training_mode():
    layer = _built(layers.BatchNorm(), 3)
    layer.params["gamma"][...] = [1.5, 0.5, 2.0]
    layer.params["beta"][...] = [0.1, -0.2, 0.3]
    x = np.random.default_rng(4).normal(size=(6, 3)) * 3 + 1
    _check(layer, x)


def test_batch_norm_statistics_and_moving_averages():
    layer = _built(layers.BatchNorm(momentum=0.9, epsilon=1e-3), 2)
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]])
    y = layer.forward(x, training=True)
    mean, var = x.mean(axis=0), x.var(axis=0)  # biased variance, as Keras
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3))
    np.testing.assert_allclose(layer.state["moving_mean"], 0.1 * mean)
    np.testing.assert_allclose(layer.state["moving_variance"], 0.9 + 0.1 * var)
    y_inf = layer.forward(x, training=False)
    np.testing.assert_allclose(y_inf, (x - 0.1 * mean) / np.sqrt(0.9 + 0.1 * var + 1e-3))


@pytest.mark.parametrize("layer", [layers.Dense(3, {"name": "leaky_relu", "alpha": 0.1}, "he_normal", "zeros",
                                                {"l1": 0.0, "l2": 0.01}, False),
                                   layers.Dropout(0.3), layers.BatchNorm(0.95, 0.01)], ids=lambda l: l.type)
def test_configs_round_trip(layer):
    config = layer.get_config()
    assert layers.from_config(config).get_config() == config
