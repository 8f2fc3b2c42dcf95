"""The Keras backend's own epoch loop (core/backends/keras_loop.py) gives `model.fit`'s numbers.

Per-epoch losses and metrics equal a plain `model.fit`'s to 1e-6 relative (they come out bit-identical
here): the course notes' three XOR models, and a shuffled multi-batch job with validation, dropout, batch
normalisation, an L2 penalty, f1 and early stopping, in both of the loop's modes (stepped, fused). Divergence,
cancellation and checkpoints behave as they do in `fit`. Timing is bench/bench_keras.py's, never asserted here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from trainyard.core.backends import get_backend, keras_loop
from trainyard.core.callbacks import Callbacks
from trainyard.core.errors import Cancelled, Diverged

from tests.support.backend_data import prepared

pytest.importorskip("tensorflow")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
XOR_MODELS = ["keras_xor_model1.json", "keras_xor_model2.json", "keras_xor_model3.json"]


@pytest.fixture
def loops(monkeypatch) -> list[str]:
    """The loop each `keras_loop.fit` call ran ("fit", "stepped", "fused"), recorded as the backend trains."""
    ran: list[str] = []
    fit = keras_loop.fit
    monkeypatch.setattr(keras_loop, "fit", lambda *a, **k: ran.append(fit(*a, **k)) or ran[-1])
    return ran


def plain_fit_history(spec, data) -> dict[str, list[float]]:
    """A plain Keras script: the backend's model and compile, then one `model.fit` call."""
    import keras

    from trainyard.core.backends import keras_build as kb
    from trainyard.core.targets import encode

    keras.utils.set_random_seed(spec.training.seed)
    model = kb.build_model(spec, data.x_train.shape[1])
    model.compile(optimizer=kb.optimizer(spec), loss=kb.loss(spec), metrics=kb.metrics(spec))
    t = spec.training
    y = encode(data.y_train, data.task, spec.model.output.units, np.float32)
    return model.fit(data.x_train.astype(np.float32), y, batch_size=t.batch_size, epochs=t.epochs, shuffle=t.shuffle,
                     verbose=0).history


def train(doc: dict, callbacks: Callbacks | None = None):
    spec, data = prepared(copy.deepcopy(doc))
    return get_backend("keras").train(spec, data, callbacks or Callbacks())


@pytest.mark.parametrize("example", XOR_MODELS)
def test_the_notes_xor_models_lose_what_plain_fit_loses_every_epoch(example, loops, monkeypatch):
    monkeypatch.setattr(keras_loop, "FUSE_MIN_EPOCHS", 10)  # fused from epoch 2 of 40 (the notes' 1000: the bench)
    doc = json.loads((EXAMPLES / example).read_text())
    doc["training"]["epochs"] = 40
    spec, data = prepared(copy.deepcopy(doc))
    expected = plain_fit_history(spec, data)
    result = train(doc)
    assert loops == ["fused"]
    assert [row["epoch"] for row in result.history] == list(range(1, 41))
    for key in ("loss", "accuracy"):
        assert [row[key] for row in result.history] == pytest.approx(expected[key], rel=1e-6, abs=0), key
    assert len(set(expected["loss"])) > 30  # it learns: forty different losses, not one repeated


SHUFFLED = {
    "backend": "keras",
    "dataset": {"builtin": "iris", "scale": "standard", "seed": 3, "validation_split": 0.2},
    "model": {"layers": [{"type": "dense", "units": 12, "activation": "relu", "kernel_regularizer": {"l2": 0.01}},
                         {"type": "batch_norm"}, {"type": "dropout", "rate": 0.2},
                         {"type": "dense", "units": 3, "activation": "softmax"}]},
    # 96 rows in batches of 20: four full, one short; shuffled, so each batch's rows depend on the permutation
    # early stopping ends it at epoch 16 of 30 and restores epoch 14's weights
    "training": {"optimizer": {"name": "adam", "learning_rate": 0.02}, "batch_size": 20, "epochs": 30, "seed": 5,
                 "metrics": ["accuracy", "f1"], "early_stopping": {"monitor": "val_loss", "patience": 2,
                                                                    "restore_best_weights": True}},
}


@pytest.mark.parametrize("fuse_min_epochs", [2, 10_000], ids=["fused", "stepped"])
def test_shuffled_batches_validation_and_early_stopping_equal_fits(fuse_min_epochs, loops, monkeypatch):
    monkeypatch.setattr(keras_loop, "MAX_BYTES", -1)  # the same backend through model.fit
    expected = train(SHUFFLED)
    monkeypatch.setattr(keras_loop, "MAX_BYTES", 32 << 20)
    monkeypatch.setattr(keras_loop, "FUSE_MIN_EPOCHS", fuse_min_epochs)  # fused from epoch 2, or never
    result = train(SHUFFLED)
    assert loops == ["fit", "fused" if fuse_min_epochs == 2 else "stepped"]
    assert expected.stopped_early and 5 < len(expected.history) < 30
    assert len(result.history) == len(expected.history) and result.stopped_early
    for ours, theirs in zip(result.history, expected.history):
        assert list(ours) == list(theirs)
        assert {k: v for k, v in ours.items() if k != "time"} == pytest.approx(
            {k: v for k, v in theirs.items() if k != "time"}, rel=1e-6, abs=0)
    # the final model (best weights restored) scores the same on every split
    matrices = [k for k in expected.metrics if k.endswith("confusion_matrix")]
    assert {k: result.metrics[k] for k in matrices} == {k: expected.metrics[k] for k in matrices}
    assert {k: v for k, v in result.metrics.items() if k not in matrices} == pytest.approx(
        {k: v for k, v in expected.metrics.items() if k not in matrices}, rel=1e-6, abs=0)


def test_fit_batches_are_fits_shuffled_order_every_epoch_and_unshuffled_rows_in_order():
    import keras

    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    keras.utils.set_random_seed(1)
    shuffled = keras_loop.fit_batches(model, x, x, 4, True)
    rows = np.concatenate([b[0].numpy()[:, 0] for b in shuffled])
    assert [len(b[0]) for b in shuffled] == [4, 4, 2]
    assert sorted(rows) == list(range(10)) and list(rows) != list(range(10))
    ordered = keras_loop.fit_batches(model, x, x, 4, False)
    assert list(np.concatenate([b[0].numpy()[:, 0] for b in ordered])) == list(range(10))
    assert keras_loop.fit_batches(model, x, x, 1, False) is not None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(keras_loop, "MAX_BATCHES", 9)
        assert keras_loop.fit_batches(model, x, x, 1, False) is None  # ten batches: model.fit's job


def test_without_a_global_seed_fit_reshuffles_and_the_loop_leaves_it_to_fit():
    import keras
    import tensorflow as tf

    x = np.arange(64, dtype=np.float32).reshape(64, 1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    tf.random.set_seed(None)  # each epoch's iterator now draws its own permutation
    try:
        assert keras_loop.fit_batches(model, x, x, 8, True) is None
        assert keras_loop.fit(model, x, x, batch_size=8, epochs=1) == "fit"
    finally:
        keras.utils.set_random_seed(0)


XOR = {"backend": "keras", "dataset": {"builtin": "xor", "shuffle": False},
       "model": {"layers": [{"type": "dense", "units": 3, "activation": "relu",
                             "kernel_initializer": {"name": "normal", "mean": 0.75, "stddev": 0.01}},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"loss": "mse", "optimizer": {"name": "adam", "learning_rate": 0.05}, "batch_size": 2,
                    "epochs": 12, "seed": 20, "metrics": ["accuracy"]}}


def test_a_fused_epoch_sees_a_cancellation_at_its_end(loops, monkeypatch):
    monkeypatch.setattr(keras_loop, "FUSE_MIN_EPOCHS", 2)
    rows = []

    def check():
        if len(rows) >= 3:
            raise Cancelled("cancel requested")

    with pytest.raises(Cancelled):
        train(XOR, Callbacks(on_epoch=rows.append, check=check))
    assert [r["epoch"] for r in rows] == [1, 2, 3]


def test_divergence_names_the_epoch_fit_names(monkeypatch):
    doc = {"backend": "keras", "dataset": {"builtin": "diabetes"},
           "model": {"layers": [{"type": "dense", "units": 8}, {"type": "dense", "units": 1}]},
           # a rate just past stable: the loss grows for a few epochs before it overflows (epoch 4 here)
           "training": {"optimizer": {"name": "sgd", "learning_rate": 0.008}, "epochs": 20, "seed": 0, "batch_size": 100}}
    fused = []
    fused_epoch = keras_loop.fused_epoch
    monkeypatch.setattr(keras_loop, "fused_epoch", lambda *a: fused.append(1) or fused_epoch(*a))
    monkeypatch.setattr(keras_loop, "FUSE_MIN_EPOCHS", 2)
    epochs = []
    for max_bytes in (-1, 32 << 20):  # model.fit, then the loop
        monkeypatch.setattr(keras_loop, "MAX_BYTES", max_bytes)
        with pytest.raises(Diverged) as exc:
            train(doc)
        epochs.append(exc.value.epoch)
    assert fused == [1]  # the loop fused its epochs from the second on
    assert 2 < epochs[0] < 20 and epochs[1] == epochs[0], epochs


def test_a_resumed_fused_run_continues_to_the_same_losses(loops, monkeypatch):
    monkeypatch.setattr(keras_loop, "FUSE_MIN_EPOCHS", 2)
    doc = copy.deepcopy(XOR)
    doc["training"].update(epochs=9, checkpoint_every=4, shuffle=True)
    states = {}
    full = train(doc, Callbacks(on_checkpoint=lambda e, s: states.setdefault(e, s)))
    assert sorted(states) == [4, 8]
    resumed = train(doc, Callbacks(resume=states[4]))
    assert loops == ["fused", "fused"]
    assert [r["epoch"] for r in resumed.history] == list(range(1, 10))
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in full.history], rel=1e-6, abs=0)
    assert resumed.metrics["loss"] == pytest.approx(full.metrics["loss"], rel=1e-6, abs=0)
