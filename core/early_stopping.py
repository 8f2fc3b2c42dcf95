"""Keras's EarlyStopping: stop when the monitored quantity has not improved for `patience` epochs."""

from __future__ import annotations

import math

import numpy as np

from trainyard.core.metrics import minimised
from trainyard.core.network import Network


class EarlyStopper:
    """Keras's rules: an improvement beats the best by more than `min_delta`; `wait` counts epochs since one;
    stop once `wait >= patience` (never after the first epoch); with `restore_best_weights`, the best epoch's
    weights are put back when (and only when) training stops early."""

    def __init__(self, monitor: str, patience: int = 0, min_delta: float = 0.0, restore_best_weights: bool = False):
        self.monitor, self.patience, self.restore = monitor, patience, restore_best_weights
        self.maximise = not minimised(monitor)
        self.min_delta = abs(min_delta)
        self.best = -math.inf if self.maximise else math.inf
        self.wait, self.best_epoch = 0, 0
        self.best_weights: list[dict[str, np.ndarray]] | None = None

    def _improved(self, current: float) -> bool:
        if self.maximise:
            return current - self.min_delta > self.best
        return current + self.min_delta < self.best

    def update(self, epoch: int, row: dict, network: Network) -> bool:
        """Record one epoch's row; True when training should stop (best weights already restored if asked).

        A row without the monitored key is skipped; a key whose value is None (the row's form of NaN or
        infinity) counts as no improvement, as Keras's comparisons with NaN do.
        """
        if self.monitor not in row:
            return False
        current = row[self.monitor]
        if self.restore and self.best_weights is None:
            self.best_weights, self.best_epoch = network.get_weights(), epoch
        self.wait += 1
        if current is not None and self._improved(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore:
                self.best_weights = network.get_weights()
            return False
        if self.wait >= self.patience and epoch > 1:
            if self.restore and self.best_weights is not None:
                network.set_weights(self.best_weights)
            return True
        return False

    def get_state(self) -> dict:
        """Scalars for a checkpoint (the best weights are saved as arrays beside them)."""
        return {"best": self.best, "wait": self.wait, "best_epoch": self.best_epoch,
                "has_best_weights": self.best_weights is not None}

    def set_state(self, state: dict, best_weights: list[dict[str, np.ndarray]] | None) -> None:
        self.best, self.wait, self.best_epoch = float(state["best"]), int(state["wait"]), int(state["best_epoch"])
        self.best_weights = best_weights if state["has_best_weights"] else None
