"""Optimizers: exact values of single steps (computed by hand from Keras's formulas), state round trips."""

import numpy as np
import pytest

from trainyard.core import optimizers


def _steps(config, grads, w0=1.0):
    opt = optimizers.get(config)
    w = np.array([w0])
    opt.build([w])
    for g in grads:
        opt.update([w], [np.array([g])])
    return float(w[0]), opt


@pytest.mark.parametrize("config, grads, expected", [
    # w - lr g = 1 - 0.1 * 0.5
    ({"name": "sgd", "learning_rate": 0.1}, [0.5], 0.95),
    # m1 = -0.05, w1 = 0.95; m2 = 0.9 m1 - 0.05 = -0.095, w2 = 0.855
    ({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}, [0.5, 0.5], 0.855),
    # Nesterov: w1 = 1 - 0.05 + 0.9 (-0.05) = 0.905; w2 = 0.905 - 0.05 + 0.9 (-0.095) = 0.7695
    ({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, [0.5], 0.905),
    ({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, [0.5, 0.5], 0.7695),
    # α = 0.1 sqrt(0.001) / 0.1; m = 0.05; v = 0.00025; w = 1 - α m / (sqrt(v) + 1e-7)
    ({"name": "adam", "learning_rate": 0.1}, [0.5], 0.900000632451532),
    # t = 2, g = -0.25: m = 0.02, v = 0.00031225, α = 0.1 sqrt(1 - 0.999²) / (1 - 0.9²)
    ({"name": "adam", "learning_rate": 0.1}, [0.5, -0.25], 0.8733670792079218),
    # v = 0.1 g² = 0.025; w = 1 - 0.1 g / sqrt(v + 1e-7)  (Keras puts ε inside the root)
    ({"name": "rmsprop", "learning_rate": 0.1}, [0.5], 0.6837728664367967),
    # with momentum 0.5: Δ1 = 0.3162271, Δ2 = 0.05 / sqrt(0.0475 + 1e-7); m2 = 0.5 Δ1 + Δ2
    ({"name": "rmsprop", "learning_rate": 0.1, "momentum": 0.5}, [0.5, 0.5], 0.29624380727449817),
    # the perceptron rule with the criterion's gradient (ŷ - y) x: w + lr (y - ŷ) x
    ({"name": "perceptron", "learning_rate": 1.0}, [-1.0], 2.0),
])
def test_exact_steps(config, grads, expected):
    w, _ = _steps(config, grads)
    assert w == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_defaults_are_keras_defaults():
    adam = optimizers.get("adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    rms = optimizers.get("rmsprop")
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon) == (0.001, 0.9, 0.0, 1e-7)
    assert optimizers.get("sgd").learning_rate == 0.01
    assert optimizers.get({"name": "adam", "learning_rate": 0.01, "epsilon": None}).epsilon == 1e-7


def test_update_is_in_place_and_float32_stays_float32():
    opt = optimizers.get("adam")
    w = np.ones(5, np.float32)
    opt.build([w])
    before = w.__array_interface__["data"][0]
    opt.update([w], [np.full(5, 0.5, np.float32)])
    assert w.dtype == np.float32 and w.__array_interface__["data"][0] == before
    assert all(s[0].dtype == np.float32 for s in opt.slots.values())


@pytest.mark.parametrize("name", ["adam", {"name": "sgd", "momentum": 0.9}, {"name": "rmsprop", "momentum": 0.3}])
def test_state_round_trip_continues_identically(name):
    grads = [0.5, -0.2, 0.3, 0.1]
    w_full, _ = _steps(name, grads)
    w_half, opt = _steps(name, grads[:2])
    state = {k: v.copy() for k, v in opt.get_state().items()}
    fresh = optimizers.get(name)
    w = np.array([w_half])
    fresh.build([w])
    fresh.set_state(state)
    for g in grads[2:]:
        fresh.update([w], [np.array([g])])
    assert w[0] == w_full


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_kernel_is_bit_identical_to_the_numpy_path(dtype, monkeypatch):
    pytest.importorskip("numba")
    from trainyard.core import fused

    rng = np.random.default_rng(0)
    w0 = rng.normal(size=fused.MIN_SIZE).astype(dtype)
    grads = [rng.normal(size=w0.size).astype(dtype) for _ in range(3)]

    def run():
        opt, w = optimizers.get({"name": "adam", "learning_rate": 0.01}), w0.copy()
        opt.build([w])
        for g in grads:
            opt.update([w], [g])
        return opt, w

    fused_opt, fused_w = run()
    assert fused_opt._kernels[0] is not None
    monkeypatch.setattr(fused, "_numba_available", lambda: False)
    numpy_opt, numpy_w = run()
    assert numpy_opt._kernels[0] is None
    np.testing.assert_array_equal(fused_w, numpy_w)
    np.testing.assert_array_equal(fused_opt.slots["v"][0], numpy_opt.slots["v"][0])
