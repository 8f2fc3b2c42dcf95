"""Checkpoints bounded in bytes per minute (finding #57: `checkpoint_every: 1` on 49M parameters wrote 588 MB an
epoch): a due checkpoint is skipped while the job's budget is spent, the last epoch's is always written. The clock
is injected; nothing here waits or times anything."""

from __future__ import annotations

import pytest

from trainyard.core.callbacks import Callbacks
from trainyard.core.checkpoint import CheckpointBudget
from trainyard.core.job import train_job
from trainyard.core.validate import validate_spec


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def xor(epochs: int, backend: str = "numpy") -> dict:
    return {"backend": backend, "dataset": {"builtin": "xor"},
            "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {"epochs": epochs, "batch_size": 4, "seed": 1, "checkpoint_every": 1}}


class Recorder:
    """Callbacks that write checkpoints into a list, spend them from `budget`, and move `clock` a second per epoch."""

    def __init__(self, budget: CheckpointBudget | None, clock: Clock):
        self.budget, self.clock, self.written = budget, clock, []

    def callbacks(self) -> Callbacks:
        return Callbacks(on_epoch=self.on_epoch, on_checkpoint=self.on_checkpoint,
                         want_checkpoint=self.budget.allows if self.budget else None)

    def on_epoch(self, row: dict) -> None:
        self.clock.now += 1.0

    def on_checkpoint(self, epoch: int, state: bytes) -> None:
        self.written.append((epoch, len(state)))
        if self.budget:
            self.budget.spent(len(state))


def test_the_budget_drains_at_its_rate_and_a_large_checkpoint_waits_its_turn():
    clock = Clock()
    budget = CheckpointBudget(600, clock=clock)  # 10 bytes a second
    assert budget.allows()
    budget.spent(1800)  # three minutes' worth at once: written (the budget was free), then paid off
    assert not budget.allows()
    clock.now += 119  # 1,190 drained: 610 left, over a minute's 600
    assert not budget.allows()
    clock.now += 2  # 590 left
    assert budget.allows()
    budget.spent(5)
    assert budget.allows()  # 595 < 600


def test_every_checkpoint_is_written_when_the_budget_allows():
    recorder = Recorder(None, Clock())
    train_job(validate_spec(xor(30)), recorder.callbacks())
    assert [epoch for epoch, _ in recorder.written] == list(range(1, 31))


@pytest.mark.parametrize("minutes_of_budget", [0, 3])
def test_checkpoints_stay_within_the_bytes_per_minute_and_the_last_is_always_written(minutes_of_budget):
    unlimited = Recorder(None, Clock())
    train_job(validate_spec(xor(300)), unlimited.callbacks())
    size = max(n for _, n in unlimited.written)
    # A budget of 3 checkpoints a minute (or 1 byte: the first checkpoint alone spends hours of it); epochs take
    # a second each on the injected clock, so 300 epochs are 5 minutes.
    per_minute = 3 * size if minutes_of_budget else 1
    clock = Clock()
    recorder = Recorder(CheckpointBudget(per_minute, clock=clock), clock)
    train_job(validate_spec(xor(300)), recorder.callbacks())
    epochs = [epoch for epoch, _ in recorder.written]
    written = sum(n for _, n in recorder.written)
    assert epochs[0] == 1 and epochs[-1] == 300
    if minutes_of_budget:
        # A minute's worth at the start, 5 minutes drained, one checkpoint over the top and the last one.
        assert per_minute * 5 < written <= per_minute * (1 + 5) + 2 * size
        assert len(epochs) < 100  # checkpoints early in the run are smaller (their history is shorter)
    else:
        assert epochs == [1, 300]
    assert len(unlimited.written) == 300
