"""The optional numba kernels (core.fused) train bit-identically to the plain numpy path."""

import numpy as np
import pytest

from trainyard.core import fused
from trainyard.core.datasets.prepared import PreparedData, Preprocessing
from trainyard.core.spec import parse_spec
from trainyard.core.training import Trainer

pytest.importorskip("numba")

FEATURES = 400  # 400 -> 128 -> k is over fused.MIN_SIZE parameters: the kernels are used


def _data(n_classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((300, FEATURES))
    y = (x @ rng.normal(size=(FEATURES, n_classes))).argmax(axis=1) if n_classes > 2 else (x[:, 0] > 0.5).astype(int)
    return PreparedData(x, y, x[:40], y[:40], x[:0], y[:0],
                        Preprocessing("classification", FEATURES, list(range(max(n_classes, 2)))))


def _spec(output, optimizer, **training):
    layers = [{"type": "dense", "units": 128, "activation": "relu", "kernel_regularizer": {"l1": 1e-4, "l2": 1e-3}},
              {"type": "dropout", "rate": 0.1}, output]
    return parse_spec({"dataset": {"builtin": "mnist"}, "model": {"layers": layers},
                       "training": {"optimizer": optimizer, "batch_size": 32, "epochs": 3, "seed": 5,
                                    "metrics": ["accuracy"], **training}})


CASES = {
    "softmax+cce, adam": (_spec({"type": "dense", "units": 10, "activation": "softmax"}, {"name": "adam"}), 10),
    "sigmoid+bce, sgd": (_spec({"type": "dense", "units": 1, "activation": "sigmoid"},
                               {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}), 2),
    "softmax+mse": (_spec({"type": "dense", "units": 3, "activation": "softmax"}, {"name": "adam"},
                          loss="mean_squared_error"), 3),
}


def _train(spec, data, dtype):
    trainer = Trainer(spec, data, dtype=dtype)
    return trainer, trainer.fit()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_training_with_and_without_the_kernels_is_bit_identical(case, dtype, monkeypatch):
    spec, n_classes = CASES[case]
    data = _data(n_classes)
    with_kernels, fitted = _train(spec, data, dtype)
    assert with_kernels.network.uses_kernels and with_kernels.network.layers[0].activation._kernels is not None
    monkeypatch.setattr(fused, "_numba_available", lambda: False)
    plain, plain_fitted = _train(spec, data, dtype)
    assert not plain.network.uses_kernels
    np.testing.assert_array_equal(fitted.network.flat_params, plain_fitted.network.flat_params)
    assert [{k: v for k, v in r.items() if k != "time"} for r in fitted.history] == \
           [{k: v for k, v in r.items() if k != "time"} for r in plain_fitted.history]
    assert fitted.metrics == plain_fitted.metrics


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 3, 7, 8, 10, 17, 64, 128])
def test_the_softmax_row_sums_add_in_numpys_own_order(width, dtype):
    # normalise_rows copies numpy's pairwise order for a row; if a numpy release changes it, this fails
    rng = np.random.default_rng(width)
    a = (rng.random((500, width)) * 10.0 ** rng.integers(-4, 5, (500, width))).astype(dtype)
    expected = np.add.reduce(a, axis=1, keepdims=True)
    total, normalised = np.empty_like(expected), a.copy()
    fused.kernel("normalise_rows", dtype)(normalised, total)
    np.testing.assert_array_equal(total, expected)
    np.testing.assert_array_equal(normalised, a / expected)


def test_elementwise_kernels_keep_numpys_zeros_nans_and_infinities():
    special = np.array([[-0.0, 0.0, np.nan, np.inf, -np.inf, 1e-45, -1e-45, 2.5, -2.5]], np.float32)
    relu = np.empty_like(special)
    fused.kernel("relu", np.float32)(special, relu)
    np.testing.assert_array_equal(np.signbit(relu), np.signbit(np.maximum(special, 0)))
    np.testing.assert_array_equal(relu, np.maximum(special, 0))
    biased, z = np.empty_like(special), special.copy()
    fused.kernel("bias_relu", np.float32)(z, np.full(special.shape[1], 0.0, np.float32), biased)
    np.testing.assert_array_equal(np.signbit(biased), np.signbit(np.maximum(special + np.float32(0.0), 0)))
    np.testing.assert_array_equal(z, special + np.float32(0.0))
    grad = special[:, ::-1].copy()
    back = np.empty_like(grad)
    fused.kernel("relu_backward", np.float32)(grad, relu, back)
    with np.errstate(invalid="ignore"):  # inf * 0
        expected = np.multiply(grad, relu > 0)
    np.testing.assert_array_equal(back, expected)
    np.testing.assert_array_equal(np.signbit(back), np.signbit(expected))
    row_max, shifted = np.empty((1, 1), np.float32), np.empty_like(special)
    fused.kernel("shift_by_row_max", np.float32)(special, row_max, shifted)
    assert np.isnan(row_max[0, 0]) and np.isnan(np.max(special, axis=1))[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 2), (12, 3), (32, 10), (128, 128), (1000, 300)])
def test_bias_gradients_add_rows_in_numpys_order(shape, dtype):
    rng = np.random.default_rng(shape[0])
    x = (rng.normal(size=shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)
    out = np.empty(shape[1], dtype)
    fused.kernel("column_sum", dtype)(x, out)
    np.testing.assert_array_equal(out, np.sum(x, axis=0))
