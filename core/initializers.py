"""Weight initializers with Keras's formulas, drawing from an explicit numpy Generator.

Fans follow Keras: a kernel `(fan_in, fan_out)`; a 1-D shape `(n,)` has fan_in = fan_out = n.
Keras's `glorot_normal` / `he_normal` are *truncated* normals (redrawn beyond two standard
deviations, stddev divided by 0.8796… so the truncated variance is the intended one);
these are too.
"""

from __future__ import annotations

import math

import numpy as np

from trainyard.core.registry import Registry

INITIALIZERS: Registry["Initializer"] = Registry("initializer")
_TRUNCATION_CORRECTION = 0.87962566103423978  # stddev of a unit normal truncated to [-2, 2]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[1]


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], stddev: float, dtype) -> np.ndarray:
    """Normal(0, stddev) with every draw beyond 2 stddev redrawn (as `tf.random.truncated_normal`)."""
    x = rng.standard_normal(shape)
    bad = np.abs(x) > 2
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > 2
    return (x * stddev).astype(dtype)


class Initializer:
    """Base class: `__call__(shape, rng, dtype)` returns a new array."""

    name = ""

    def __call__(self, shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, **{k: v for k, v in vars(self).items()}}


@INITIALIZERS.register("zeros")
class Zeros(Initializer):
    name = "zeros"

    def __call__(self, shape, rng, dtype=np.float32):
        return np.zeros(shape, dtype)


@INITIALIZERS.register("ones")
class Ones(Initializer):
    name = "ones"

    def __call__(self, shape, rng, dtype=np.float32):
        return np.ones(shape, dtype)


@INITIALIZERS.register("constant")
class Constant(Initializer):
    name = "constant"

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape, rng, dtype=np.float32):
        return np.full(shape, self.value, dtype)


@INITIALIZERS.register("normal")
class Normal(Initializer):
    """Keras's RandomNormal (not truncated)."""

    name = "normal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, rng, dtype=np.float32):
        return rng.normal(self.mean, self.stddev, shape).astype(dtype)


@INITIALIZERS.register("uniform")
class Uniform(Initializer):
    """Keras's RandomUniform on [minval, maxval)."""

    name = "uniform"

    def __init__(self, minval: float = -0.05, maxval: float = 0.05):
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, rng, dtype=np.float32):
        return rng.uniform(self.minval, self.maxval, shape).astype(dtype)


class _VarianceScaling(Initializer):
    """Keras's VarianceScaling: variance `scale / fan` for fan = fan_in or the mean of the fans."""

    scale = 1.0
    mode = "fan_avg"
    distribution = "uniform"

    def __call__(self, shape, rng, dtype=np.float32):
        fan_in, fan_out = _fans(tuple(shape))
        fan = fan_in if self.mode == "fan_in" else (fan_in + fan_out) / 2
        variance = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            limit = math.sqrt(3 * variance)
            return rng.uniform(-limit, limit, shape).astype(dtype)
        return _truncated_normal(rng, tuple(shape), math.sqrt(variance) / _TRUNCATION_CORRECTION, dtype)

    def get_config(self):
        return {"name": self.name}


@INITIALIZERS.register("glorot_uniform")
class GlorotUniform(_VarianceScaling):
    """U(-l, l), l = sqrt(6 / (fan_in + fan_out))."""

    name = "glorot_uniform"


@INITIALIZERS.register("glorot_normal")
class GlorotNormal(_VarianceScaling):
    """Truncated normal, stddev sqrt(2 / (fan_in + fan_out)) before truncation correction."""

    name = "glorot_normal"
    distribution = "truncated_normal"


@INITIALIZERS.register("he_uniform")
class HeUniform(_VarianceScaling):
    """U(-l, l), l = sqrt(6 / fan_in)."""

    name = "he_uniform"
    scale, mode = 2.0, "fan_in"


@INITIALIZERS.register("he_normal")
class HeNormal(_VarianceScaling):
    """Truncated normal, stddev sqrt(2 / fan_in) before truncation correction."""

    name = "he_normal"
    scale, mode, distribution = 2.0, "fan_in", "truncated_normal"


def get(config: str | dict) -> Initializer:
    """An initializer from its spec form; `None` parameters (as a normalised spec stores them) are left out."""
    if isinstance(config, dict):
        config = {k: v for k, v in config.items() if v is not None}
    return INITIALIZERS.resolve(config)
