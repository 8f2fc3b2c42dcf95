"""Optimizers with Keras's update formulas; each owns only its state (slots and step count).

Updates are fused in place into preallocated slots and one scratch array per
parameter, so a step allocates nothing. `update(params, grads)` takes parallel lists
(the Network passes one flat vector each, so a step is a handful of ufunc calls).
"""

from __future__ import annotations

import math

import numpy as np

from trainyard.core import fused
from trainyard.core.registry import Registry

OPTIMIZERS: Registry["Optimizer"] = Registry("optimizer")


class Optimizer:
    """Base class: `build(params)` creates the slots; `update` applies one step; state round-trips for checkpoints."""

    name = ""
    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)
        self.iterations = 0
        self.slots: dict[str, list[np.ndarray]] = {}

    def build(self, params: list[np.ndarray]) -> None:
        self.slots = {name: [np.zeros_like(p) for p in params] for name in self.slot_names}
        self._scratch = [np.empty_like(p) for p in params]

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.iterations += 1
        for i, (w, g) in enumerate(zip(params, grads)):
            self._update(i, w, g, self._scratch[i])

    def _update(self, i: int, w: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> None:
        raise NotImplementedError

    def get_state(self) -> dict[str, np.ndarray]:
        """Slots and step count as named arrays (for checkpoints)."""
        state = {f"{name}.{i}": a for name, arrays in self.slots.items() for i, a in enumerate(arrays)}
        return {**state, "iterations": np.array(self.iterations, dtype=np.int64)}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for name, arrays in self.slots.items():
            for i, a in enumerate(arrays):
                a[...] = state[f"{name}.{i}"]
        self.iterations = int(state["iterations"])

    def get_config(self) -> dict:
        return {"name": self.name, "learning_rate": self.learning_rate}


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Keras: m ← μ m - η g; w ← w + m (or w + μ m - η g with Nesterov); plain w ← w - η g when μ = 0."""

    name = "sgd"

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(learning_rate)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum else ()

    def _update(self, i, w, g, tmp):
        lr, mu = self.learning_rate, self.momentum
        np.multiply(g, lr, out=tmp)
        if not mu:
            w -= tmp
            return
        m = self.slots["momentum"][i]
        m *= mu
        m -= tmp
        if self.nesterov:
            w -= tmp
            np.multiply(m, mu, out=tmp)
        else:
            tmp[...] = m
        w += tmp

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Keras: α = η sqrt(1 - β2^t) / (1 - β1^t); m += (g - m)(1 - β1); v += (g² - v)(1 - β2); w -= α m / (sqrt(v) + ε)."""

    name = "adam"
    slot_names = ("m", "v")

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def build(self, params):
        super().build(params)
        self._kernels = [fused.adam_kernel(p) for p in params]

    def _update(self, i, w, g, tmp):
        t = self.iterations
        alpha = self.learning_rate * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        m, v = self.slots["m"][i], self.slots["v"][i]
        kernel = self._kernels[i]
        if kernel is not None:
            # the same float32 (or float64) arithmetic as the ufunc path below, in one pass
            dtype = w.dtype.type
            kernel(w, g, m, v, dtype(alpha), dtype(1 - self.beta_1), dtype(1 - self.beta_2), dtype(self.epsilon))
            return
        np.subtract(g, m, out=tmp)
        tmp *= 1 - self.beta_1
        m += tmp
        np.square(g, out=tmp)
        tmp -= v
        tmp *= 1 - self.beta_2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
        tmp *= alpha
        w -= tmp

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """Keras: v ← ρ v + (1 - ρ) g²; Δ = η g / sqrt(v + ε); w -= Δ, or with momentum m ← μ m + Δ; w -= m."""

    name = "rmsprop"

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7):
        super().__init__(learning_rate)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.slot_names = ("velocity", "momentum") if self.momentum else ("velocity",)

    def _update(self, i, w, g, tmp):
        v = self.slots["velocity"][i]
        v *= self.rho
        np.square(g, out=tmp)
        tmp *= 1 - self.rho
        v += tmp
        np.add(v, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= self.learning_rate
        if self.momentum:
            m = self.slots["momentum"][i]
            m *= self.momentum
            m += tmp
            w -= m
        else:
            w -= tmp

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon}


@OPTIMIZERS.register("perceptron")
class PerceptronRule(Optimizer):
    """The perceptron learning rule w ← w + η (y - ŷ) x, given the criterion's gradient (ŷ - y) x / n."""

    name = "perceptron"

    def __init__(self, learning_rate: float = 1.0):
        super().__init__(learning_rate)

    def _update(self, i, w, g, tmp):
        np.multiply(g, self.learning_rate, out=tmp)
        w -= tmp


def get(config: str | dict) -> Optimizer:
    """An optimizer from its spec form; `None` parameters are left out."""
    if isinstance(config, dict):
        config = {k: v for k, v in config.items() if v is not None}
    return OPTIMIZERS.resolve(config)
