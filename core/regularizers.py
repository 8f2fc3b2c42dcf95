"""Weight penalties (the notes' regularisation): L1/L2, held by the layer whose kernel it penalises.

As Keras attaches a regularizer to a weight (`Dense(kernel_regularizer=L1L2(...))`), a
Dense layer holds one `L1L2` or None; the penalty is added to the loss and its gradient to
the kernel's. Keras's form, without the notes' ½ and 1/n: l1 Σ|w| + l2 Σ w².
"""

from __future__ import annotations

import numpy as np


class L1L2:
    """l1 Σ|w| + l2 Σ w²; gradient l1 sign(w) + 2 l2 w (sign(0) = 0, as Keras)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def penalty(self, w: np.ndarray, tmp: np.ndarray) -> float:
        """The penalty's value for `w`; `tmp` is scratch of w's shape."""
        total = self.l2 * float(np.vdot(w, w)) if self.l2 else 0.0
        if self.l1:
            total += self.l1 * float(np.abs(w, out=tmp).sum())
        return total

    def add_gradient(self, w: np.ndarray, dw: np.ndarray, tmp: np.ndarray) -> None:
        """dw += d penalty / dw, in place; `tmp` is scratch of w's shape."""
        if self.l2:
            np.multiply(w, 2 * self.l2, out=tmp)
            dw += tmp
        if self.l1:
            np.sign(w, out=tmp)
            tmp *= self.l1
            dw += tmp

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


def get(config: dict | None) -> L1L2 | None:
    """A regularizer from its spec form `{"l1": …, "l2": …}`; None (or both zero) means no penalty."""
    if not config:
        return None
    if not isinstance(config, dict):  # a model file is untrusted: refuse, don't fail on .get
        raise TypeError(f"kernel_regularizer must be an object with l1 / l2, not {type(config).__name__}")
    reg = L1L2(config.get("l1", 0.0), config.get("l2", 0.0))
    return reg if (reg.l1 or reg.l2) else None
