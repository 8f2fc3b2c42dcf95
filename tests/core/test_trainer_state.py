"""The trainer saves and loads its own state (as the optimizer and early stopper do); checkpoints store it."""

import numpy as np

from trainyard.core.callbacks import Callbacks
from trainyard.core.datasets.prepared import PreparedData, Preprocessing
from trainyard.core.spec import parse_spec
from trainyard.core.training import Trainer


def _data():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 150)
    x = rng.normal(size=(150, 4)) + y[:, None]
    return PreparedData(x, y, x[:30], y[:30], x[:0], y[:0], Preprocessing("classification", 4, [0, 1, 2]))


def _spec(epochs):
    layers = [{"type": "dense", "units": 8, "activation": "tanh", "kernel_regularizer": {"l2": 0.01}},
              {"type": "dropout", "rate": 0.2}, {"type": "batch_norm"},
              {"type": "dense", "units": 3, "activation": "softmax"}]
    dataset = {"builtin": "iris", "validation_split": 0.2}
    return parse_spec({"dataset": dataset, "model": {"layers": layers}, "training": {
        "optimizer": "adam", "batch_size": 16, "epochs": epochs, "seed": 11, "metrics": ["accuracy"],
        "early_stopping": {"monitor": "val_loss", "patience": 50, "restore_best_weights": True}}})


def _rows(history):
    return [{k: v for k, v in row.items() if k != "time"} for row in history]


def test_a_fresh_trainer_given_the_state_continues_as_the_uninterrupted_run():
    data = _data()
    whole = Trainer(_spec(6), data).fit()
    first = Trainer(_spec(3), data)
    first.fit()
    state = first.get_state()
    assert set(state) == {"weights", "optimizer", "rng", "history", "early_stopping", "best_weights"}
    assert [row["epoch"] for row in state["history"]] == [1, 2, 3] and state["best_weights"] is not None
    second = Trainer(_spec(6), data)
    second.set_state(state)
    losses = [second._train_epoch(epoch)["loss"] for epoch in (4, 5, 6)]
    assert losses == [row["loss"] for row in whole.history[3:]]  # bit for bit: the Generator went on where it was
    third = Trainer(_spec(6), data)  # without the state the same epochs differ
    assert [third._train_epoch(epoch)["loss"] for epoch in (1, 2, 3)] != losses


def test_a_checkpoint_holds_exactly_the_trainers_state():
    data = _data()
    saved = {}
    spec = _spec(4).model_copy(deep=True)
    spec.training.checkpoint_every = 2
    trainer = Trainer(spec, data, Callbacks(on_checkpoint=lambda epoch, blob: saved.__setitem__(epoch, blob)))
    trainer.fit()
    restored = Trainer(_spec(4), data)
    from trainyard.core.checkpoint import load_checkpoint
    assert load_checkpoint(saved[2], restored) == 2
    state = restored.get_state()
    assert _rows(state["history"]) == _rows(trainer.history[:2])
    assert state["rng"]["state"] != Trainer(_spec(4), data).get_state()["rng"]["state"]
    assert state["early_stopping"]["has_best_weights"]
