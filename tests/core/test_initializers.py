"""Initializers: Keras's formulas, reproducible from an explicit Generator, every spec name registered."""

import numpy as np
import pytest

from trainyard.core import initializers
from trainyard.core.spec import INITIALIZERS as SPEC_INITIALIZERS


def test_every_spec_initializer_is_registered():
    assert initializers.INITIALIZERS.names() == sorted(SPEC_INITIALIZERS)


@pytest.mark.parametrize("name", sorted(SPEC_INITIALIZERS))
def test_same_generator_seed_gives_same_values(name):
    init = initializers.get(name)
    a = init((20, 30), np.random.default_rng(3))
    b = init((20, 30), np.random.default_rng(3))
    assert a.dtype == np.float32 and a.shape == (20, 30)
    np.testing.assert_array_equal(a, b)


def test_uniform_limits():
    rng = np.random.default_rng(0)
    w = initializers.get("glorot_uniform")((300, 100), rng, np.float64)
    limit = np.sqrt(6 / 400)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
    w = initializers.get("he_uniform")((300, 100), rng, np.float64)
    assert np.abs(w).max() <= np.sqrt(6 / 300)
    w = initializers.get({"name": "uniform", "minval": 2.0, "maxval": 3.0})((1000,), rng)
    assert w.min() >= 2 and w.max() < 3


@pytest.mark.parametrize("name, variance", [("glorot_normal", 2 / 800), ("he_normal", 2 / 500)])
def test_truncated_normals_have_the_intended_variance(name, variance):
    w = initializers.get(name)((500, 300), np.random.default_rng(1), np.float64)
    stddev = np.sqrt(variance) / 0.87962566103423978  # before truncation, as Keras
    assert np.abs(w).max() <= 2 * stddev  # nothing beyond two standard deviations
    assert w.var() == pytest.approx(variance, rel=0.02)


def test_constant_normal_and_config():
    rng = np.random.default_rng(2)
    np.testing.assert_array_equal(initializers.get({"name": "constant", "value": 0.75})((2, 2), rng), 0.75)
    w = initializers.get({"name": "normal", "mean": 0.75, "stddev": 0.01})((1000,), rng, np.float64)
    assert w.mean() == pytest.approx(0.75, abs=0.002) and w.std() == pytest.approx(0.01, rel=0.1)
    config = initializers.get({"name": "normal", "mean": 1.0, "stddev": 0.5}).get_config()
    assert config == {"name": "normal", "mean": 1.0, "stddev": 0.5}
    assert initializers.get(config).get_config() == config
