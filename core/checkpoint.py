"""Resumable training state as npz bytes (no pickle): weights, optimizer slots, RNG state, history, epoch.

Also the budget that bounds how many bytes of checkpoints a job writes per minute.
"""

from __future__ import annotations

import io
import json
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from trainyard.core.training import Trainer

FORMAT = "trainyard-checkpoint"
VERSION = 1


def _weights(arrays: dict, prefix: str, network) -> list[dict[str, np.ndarray]]:
    """Per-layer weight dicts read from `arrays`, checked against the network's own shapes."""
    result = []
    for i, layer in enumerate(network.layers):
        layer_weights = {}
        for name, current in layer.weights().items():
            value = arrays[f"{prefix}.{i}.{name}"]
            if value.shape != current.shape:
                raise ValueError(f"checkpoint {prefix}.{i}.{name} has shape {value.shape}, expected {current.shape}")
            layer_weights[name] = value
        result.append(layer_weights)
    return result


def save_checkpoint(trainer: "Trainer", epoch: int) -> bytes:
    """Everything needed to continue `trainer` after `epoch` exactly as if it had not stopped (its `get_state`)."""
    state = trainer.get_state()
    arrays: dict[str, np.ndarray] = {}
    for i, weights in enumerate(state["weights"]):
        arrays.update({f"weights.{i}.{k}": v for k, v in weights.items()})
    arrays.update({f"optimizer.{k}": v for k, v in state["optimizer"].items()})
    for i, weights in enumerate(state["best_weights"] or []):
        arrays.update({f"best.{i}.{k}": v for k, v in weights.items()})
    meta = {
        "format": FORMAT, "version": VERSION, "epoch": epoch, "history": state["history"],
        "rng": state["rng"], "early_stopping": state["early_stopping"],
    }
    arrays["meta"] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_checkpoint(blob: bytes, trainer: "Trainer") -> int:
    """Restore `trainer` from `save_checkpoint` bytes (its `set_state`); returns the epoch it had completed."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(str(arrays.pop("meta")[()]))
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError("not a trainyard checkpoint of a supported version")
    es = meta["early_stopping"]
    trainer.set_state({
        "weights": _weights(arrays, "weights", trainer.network),
        "optimizer": {k.removeprefix("optimizer."): v for k, v in arrays.items() if k.startswith("optimizer.")},
        "rng": meta["rng"], "history": meta["history"], "early_stopping": es,
        "best_weights": _weights(arrays, "best", trainer.network) if es and es["has_best_weights"] else None,
    })
    return int(meta["epoch"])


class CheckpointBudget:
    """Bytes of checkpoints one job may write per minute, on average: a bucket that drains at that rate.

    A due checkpoint is skipped while the bucket holds a minute's worth or more, and each one written
    adds its size. A checkpoint larger than the budget is still written when the bucket is free, and
    the following ones wait until it has drained: 588 MB checkpoints at 64 MiB a minute are written
    about every 9 minutes, not every minute as a count over the last minute alone would allow.
    """

    def __init__(self, bytes_per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute, self.clock = bytes_per_minute, clock
        self.level, self.at = 0.0, clock()

    def _drain(self) -> None:
        now = self.clock()
        self.level = max(0.0, self.level - (now - self.at) * self.per_minute / 60)
        self.at = now

    def allows(self) -> bool:
        """Whether a due checkpoint may be written now."""
        self._drain()
        return self.level < self.per_minute

    def spent(self, n_bytes: int) -> None:
        """Count a checkpoint of `n_bytes` that was written."""
        self._drain()
        self.level += n_bytes
