"""`Callbacks`: how a training loop reports (epochs, checkpoints) and is stopped (cancel, time limit).

The loop never prints or writes: the worker's callbacks write to the database, `trainyard run`'s print.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Callbacks:
    """Hooks a backend calls while training; every one optional.

    `on_epoch(row)` gets each history row as it is made. `check()` is called between
    mini-batches (or epochs, where a library offers no finer hook) and raises
    `Cancelled` / `TimedOut` to stop training. `on_checkpoint(epoch, state)` gets a
    resumable state every `training.checkpoint_every` epochs and, with `every_seconds`, once that long has passed
    since the last one (the worker's `checkpoint_seconds`); passing that state back
    as `resume` continues from that epoch. `want_checkpoint()` is asked before a due
    checkpoint is made (making one copies every weight): False skips it, except at the
    last epoch (the worker's bytes-per-minute budget, `trainyard.core.checkpoint.CheckpointBudget`).
    """

    on_epoch: Callable[[dict], None] | None = None
    check: Callable[[], None] | None = None
    on_checkpoint: Callable[[int, bytes], None] | None = None
    resume: bytes | None = None
    want_checkpoint: Callable[[], bool] | None = None
    every_seconds: float | None = None  # also checkpoint once this long has passed since the last one (or the start)
    clock: Callable[[], float] = time.monotonic
    _since: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._since = self.clock()  # training time counts from here: the first time-based checkpoint is due then

    def checkpoint_due(self, epoch: int, every: int | None, epochs: int) -> bool:
        """Whether to make a checkpoint after `epoch` (1-based) of `epochs`: every `every` epochs, or once
        `every_seconds` have passed since the last checkpoint (not at the last epoch: the job ends there), as
        allowed."""
        if not self.on_checkpoint:
            return False
        now = self.clock()
        since = self._since if self._since is not None else now
        by_epoch = bool(every and epoch % every == 0)
        by_time = bool(self.every_seconds and epoch < epochs and now - since >= self.every_seconds)
        if not (by_epoch or by_time):
            return False
        if epoch == epochs or self.want_checkpoint is None or self.want_checkpoint():
            self._since = now
            return True
        return False
