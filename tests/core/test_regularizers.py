"""L1/L2 penalties: value, gradient (numerically), spec form, and a Dense layer holding one."""

import numpy as np
import pytest

from trainyard.core import layers, regularizers
from trainyard.core.gradcheck import numerical_gradient


@pytest.mark.parametrize("config", [{"l1": 0.2}, {"l2": 0.3}, {"l1": 0.1, "l2": 0.05}])
def test_penalty_and_its_gradient(config):
    reg = regularizers.get(config)
    w = np.random.default_rng(0).normal(size=(4, 3))
    tmp = np.empty_like(w)
    expected = config.get("l1", 0) * np.abs(w).sum() + config.get("l2", 0) * (w**2).sum()  # Keras: no ½
    assert reg.penalty(w, tmp) == pytest.approx(expected)
    dw = np.full_like(w, 0.5)
    reg.add_gradient(w, dw, tmp)
    np.testing.assert_allclose(dw - 0.5, numerical_gradient(lambda: reg.penalty(w, np.empty_like(w)), w),
                               rtol=1e-6, atol=1e-9)
    assert regularizers.get(reg.get_config()).get_config() == reg.get_config()


@pytest.mark.parametrize("config", [None, {}, {"l1": 0.0, "l2": 0.0}])
def test_no_penalty_is_no_regularizer(config):
    assert regularizers.get(config) is None
    layer = layers.Dense(2, kernel_regularizer=config)
    assert layer.kernel_regularizer is None and not layer.penalised
    assert layer.get_config()["kernel_regularizer"] is None


def test_a_dense_layer_holds_its_regularizer_and_refuses_a_malformed_one():
    layer = layers.Dense(2, kernel_regularizer={"l2": 0.01})
    assert isinstance(layer.kernel_regularizer, regularizers.L1L2) and layer.penalised
    assert layer.get_config()["kernel_regularizer"] == {"l1": 0.0, "l2": 0.01}
    with pytest.raises(TypeError, match="kernel_regularizer must be an object"):
        layers.Dense(2, kernel_regularizer=[0.01])
