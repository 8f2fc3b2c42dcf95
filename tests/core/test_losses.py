"""Losses: values follow Keras's conventions, gradients agree with central differences, fused gradients too."""

import numpy as np
import pytest

from trainyard.core import activations, losses
from trainyard.core.gradcheck import numerical_gradient


def _targets(rng, shape, kind):
    if kind == "onehot":
        y = np.zeros(shape)
        y[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 1
        return y
    if kind == "binary":
        return rng.integers(0, 2, shape).astype(float)
    return rng.normal(size=shape)


@pytest.mark.parametrize("name, kind", [("mean_squared_error", "real"), ("mean_absolute_error", "real"),
                                        ("binary_crossentropy", "binary"), ("categorical_crossentropy", "onehot")])
def test_gradient_of_batch_mean_matches_numerical(name, kind):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.05, 0.95, size=(6, 3))  # inside the probability clip, away from MAE's kink at y
    y = _targets(rng, a.shape, kind)
    loss = losses.get(name)

    numeric = numerical_gradient(lambda: float(loss.per_sample(a, y).mean()), a)
    np.testing.assert_allclose(loss.gradient(a, y), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name, act, units, kind", [("binary_crossentropy", "sigmoid", 1, "binary"),
                                                    ("categorical_crossentropy", "softmax", 4, "onehot")])
def test_fused_gradient_is_derivative_through_the_activation(name, act, units, kind):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(7, units)) * 2
    y = _targets(rng, z.shape, kind)
    loss, h = losses.get(name), activations.get(act)
    assert loss.fused_with == act

    numeric = numerical_gradient(lambda: float(loss.per_sample(h.forward(z), y).mean()), z)
    np.testing.assert_allclose(loss.fused_gradient(h.forward(z), y), numeric, rtol=1e-6, atol=1e-9)
    # the form training reports: the same loss computed from the logits z
    from_logits = numerical_gradient(lambda: float(loss.per_sample(h.forward(z), y, z).mean()), z)
    np.testing.assert_allclose(loss.fused_gradient(h.forward(z), y), from_logits, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name, act, units, kind", [("binary_crossentropy", "sigmoid", 3, "binary"),
                                                    ("categorical_crossentropy", "softmax", 4, "onehot")])
def test_logits_form_equals_the_probability_form_where_nothing_is_clipped(name, act, units, kind):
    rng = np.random.default_rng(3)
    z = rng.normal(size=(6, units)) * 3
    y = _targets(rng, z.shape, kind)
    loss, a = losses.get(name), activations.get(act).forward(z)
    np.testing.assert_allclose(loss.per_sample(a, y, z), loss.per_sample(a, y), rtol=1e-9)


def test_saturated_outputs_give_kerass_fit_losses():
    # Keras 3 computes a sigmoid / softmax output's cross-entropy from its logits: model.evaluate and fit
    # report 15.0 for these two samples, where clipping p to 1e-7 would cap the wrong one at 16.1 (mean 8.06)
    z = np.array([[-30.0], [30.0]])
    bce = losses.get("binary_crossentropy").per_sample(activations.get("sigmoid").forward(z), np.ones((2, 1)), z)
    np.testing.assert_allclose(bce, [30.0, np.log1p(np.exp(-30.0))], rtol=1e-12)
    z = np.array([[-15.0, 15.0], [15.0, -15.0]])
    y = np.array([[1.0, 0.0], [1.0, 0.0]])
    cce = losses.get("categorical_crossentropy").per_sample(activations.get("softmax").forward(z), y, z)
    # log Σ e^(z - max) rounds 1 + 9.4e-14 (so does TensorFlow's logsumexp): absolute, not relative, agreement
    np.testing.assert_allclose(cce, [30.0 + np.log1p(np.exp(-30.0)), np.log1p(np.exp(-30.0))], rtol=1e-12, atol=1e-15)
    assert cce.mean() == pytest.approx(15.0)


def test_values_follow_keras_conventions():
    a = np.array([[0.0, 1.0], [2.0, 4.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0]])
    # Keras's MSE: mean over outputs, no ½ (the notes' L2 cost has one)
    np.testing.assert_allclose(losses.get("mse").per_sample(a, y), [0.5, 10.0])
    np.testing.assert_allclose(losses.get("mae").per_sample(a, y), [0.5, 3.0])
    p = np.array([[0.8], [0.0]])
    np.testing.assert_allclose(losses.get("binary_crossentropy").per_sample(p, np.array([[1.0], [1.0]])),
                               [-np.log(0.8), -np.log(1e-7)], rtol=1e-6)
    q = np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0]])
    t = np.array([[1.0, 0, 0], [1.0, 0, 0]])
    np.testing.assert_allclose(losses.get("cce").per_sample(q, t), [-np.log(0.7), -np.log(1e-7)], rtol=1e-6)


def test_perceptron_criterion_and_its_rule():
    crit = losses.get("perceptron")
    z = np.array([[-2.0], [0.5], [1.0], [-1.0]])
    a = activations.get("step").forward(z)
    y = np.array([[1.0], [0.0], [1.0], [0.0]])  # rows 0 and 1 misclassified
    np.testing.assert_allclose(crit.per_sample(a, y, z), [2.0, 0.5, 0.0, 0.0])
    # dL/dz = (a - y) / n: one sample's SGD step is w <- w + lr (y - a) x
    np.testing.assert_allclose(crit.fused_gradient(a, y), [[-0.25], [0.25], [0.0], [0.0]])


def test_float32_losses_stay_float32():
    a = np.full((3, 2), 0.5, np.float32)
    y = np.zeros((3, 2), np.float32)
    assert losses.get("mse").gradient(a, y).dtype == np.float32
    assert losses.get("categorical_crossentropy").fused_gradient(a, y).dtype == np.float32
