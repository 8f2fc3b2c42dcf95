"""The training loop: learning the notes' examples, determinism, resume, cancellation, divergence, history."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from trainyard.core.callbacks import Callbacks
from trainyard.core.datasets.prepared import PreparedData, Preprocessing
from trainyard.core.early_stopping import EarlyStopper
from trainyard.core.errors import Cancelled, Diverged
from trainyard.core.spec import parse_spec
from trainyard.core.training import Trainer, fit

GATES = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
TRUTH = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "xor": [0, 1, 1, 0]}


def _data(x, y, task="classification", classes=None, val=None, test=None):
    empty_x, empty_y = x[:0], y[:0]
    vx, vy = val if val is not None else (empty_x, empty_y)
    tx, ty = test if test is not None else (empty_x, empty_y)
    if task == "classification" and classes is None:
        classes = list(range(int(y.max()) + 1))
    return PreparedData(x, y, vx, vy, tx, ty, Preprocessing(task, x.shape[1], classes))


def _spec(layers, training, dataset=None):
    return parse_spec({"dataset": dataset or {"builtin": "xor"}, "model": {"layers": layers}, "training": training})


def _gate(name):
    return _data(GATES.copy(), np.array(TRUTH[name]), classes=[0, 1])


def _perceptron(name, epochs=30):
    spec = _spec([{"type": "dense", "units": 1, "activation": "step"}],
                 {"optimizer": "perceptron", "batch_size": 1, "epochs": epochs, "seed": 3, "metrics": ["accuracy"]})
    return fit(spec, _gate(name))


@pytest.mark.parametrize("gate", ["and", "or"])
def test_perceptron_rule_learns_linearly_separable_gates(gate):
    assert _perceptron(gate).metrics["accuracy"] == 1.0


def test_perceptron_rule_cannot_learn_xor():
    result = _perceptron("xor", epochs=200)
    assert result.metrics["accuracy"] < 1.0
    assert max(row["accuracy"] for row in result.history) < 1.0


def test_xor_is_learned_with_a_hidden_layer():
    # the notes' Keras model 3: 3 ReLU units (normal(0.75, 0.01) kernels) and a sigmoid output, MSE, Adam
    spec = _spec([{"type": "dense", "units": 3, "activation": "relu",
                   "kernel_initializer": {"name": "normal", "mean": 0.75, "stddev": 0.01}},
                  {"type": "dense", "units": 1, "activation": "sigmoid"}],
                 {"loss": "mse", "optimizer": {"name": "adam", "learning_rate": 0.05}, "batch_size": 4,
                  "epochs": 500, "seed": 20, "metrics": ["accuracy"]})
    result = fit(spec, _gate("xor"))
    assert result.metrics["accuracy"] == 1.0


def _digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order] / 16.0, y[order]
    return _data(x[:1200], y[:1200], val=(x[1200:1400], y[1200:1400]), test=(x[1400:], y[1400:]))


DIGITS_LAYERS = [{"type": "dense", "units": 32, "activation": "relu"},
                 {"type": "dense", "units": 10, "activation": "softmax"}]


def test_digits_reach_95_percent_test_accuracy_with_history_rows():
    spec = _spec(DIGITS_LAYERS, {"optimizer": "adam", "epochs": 30, "seed": 1, "metrics": ["accuracy", "f1"]})
    result = fit(spec, _digits())
    assert result.metrics["test_accuracy"] >= 0.95
    assert list(result.history[0]) == ["epoch", "loss", "accuracy", "f1", "val_loss", "val_accuracy", "val_f1", "time"]
    assert [row["epoch"] for row in result.history] == list(range(1, 31))
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert len(result.metrics["test_confusion_matrix"]) == 10


def test_final_accuracy_is_what_the_predictions_score():
    data = _digits()
    spec = _spec(DIGITS_LAYERS, {"optimizer": "adam", "epochs": 3, "seed": 2})
    result = fit(spec, data)
    predicted = result.network.predict(data.x_test).argmax(axis=1)
    assert result.metrics["test_accuracy"] == pytest.approx((predicted == data.y_test).mean())


def _regularised_spec(**training):
    layers = [{"type": "dense", "units": 8, "activation": "tanh", "kernel_regularizer": {"l2": 0.01}},
              {"type": "dropout", "rate": 0.2}, {"type": "batch_norm"},
              {"type": "dense", "units": 3, "activation": "softmax", "kernel_regularizer": {"l1": 0.001}}]
    defaults = {"optimizer": "adam", "batch_size": 16, "epochs": 8, "seed": 11, "metrics": ["accuracy"]}
    return _spec(layers, {**defaults, **training}, dataset={"builtin": "iris", "validation_split": 0.2})


def _blobs(n=150):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)) + y[:, None]
    return _data(x, y, val=(x[:30], y[:30]))


def _without_time(history):
    return [{k: v for k, v in row.items() if k != "time"} for row in history]


def test_same_spec_and_seed_are_bit_identical_and_data_untouched():
    data = _blobs()
    x_before = data.x_train.copy()
    a, b = fit(_regularised_spec(), data), fit(_regularised_spec(), data)
    assert _without_time(a.history) == _without_time(b.history)
    np.testing.assert_array_equal(a.network.flat_params, b.network.flat_params)
    np.testing.assert_array_equal(data.x_train, x_before)  # shuffling never reorders the caller's arrays
    c = fit(_regularised_spec(seed=12), data)
    assert _without_time(c.history) != _without_time(a.history)


@pytest.mark.parametrize("early_stopping", [None, {"monitor": "val_loss", "patience": 50, "restore_best_weights": True}])
def test_resuming_a_checkpoint_equals_an_uninterrupted_run(early_stopping):
    data = _blobs()
    spec = lambda: _regularised_spec(checkpoint_every=3, early_stopping=early_stopping)  # noqa: E731
    saved = {}
    whole = fit(spec(), data, Callbacks(on_checkpoint=lambda epoch, state: saved.__setitem__(epoch, state)))
    assert sorted(saved) == [3, 6]
    resumed_rows = []
    resumed = fit(spec(), data, Callbacks(resume=saved[3], on_epoch=resumed_rows.append))
    assert [row["epoch"] for row in resumed_rows] == [4, 5, 6, 7, 8]
    assert _without_time(resumed.history) == _without_time(whole.history)
    np.testing.assert_array_equal(resumed.network.flat_params, whole.network.flat_params)
    assert resumed.metrics == whole.metrics


def test_resuming_mid_patience_stops_and_restores_as_the_uninterrupted_run():
    # min_delta 10: only epoch 1 improves, so wait is 2 at the epoch-3 checkpoint and the run stops at epoch 5
    # with epoch 1's weights; a resume that lost wait (stops at 7) or the best weights (keeps epoch 5's) differs
    data = _blobs()
    early = {"monitor": "val_loss", "patience": 4, "min_delta": 10.0, "restore_best_weights": True}
    spec = lambda: _regularised_spec(checkpoint_every=3, early_stopping=early)  # noqa: E731
    saved = {}
    whole = fit(spec(), data, Callbacks(on_checkpoint=lambda epoch, state: saved.__setitem__(epoch, state)))
    assert whole.stopped_early and len(whole.history) == 5 and sorted(saved) == [3]
    resumed = fit(spec(), data, Callbacks(resume=saved[3]))
    assert resumed.stopped_early and _without_time(resumed.history) == _without_time(whole.history)
    np.testing.assert_array_equal(resumed.network.flat_params, whole.network.flat_params)
    assert resumed.metrics == whole.metrics


def test_cancellation_is_seen_between_mini_batches():
    calls = []

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise Cancelled("cancel requested")

    epochs = []
    spec = _regularised_spec(batch_size=10)  # 15 batches per epoch: the cancel comes mid-epoch 1
    with pytest.raises(Cancelled):
        fit(spec, _blobs(), Callbacks(check=check, on_epoch=epochs.append))
    assert len(calls) == 3 and epochs == []


def test_divergence_raises_with_its_epoch():
    x = np.linspace(-1, 1, 40)[:, None]
    data = _data(x, 1e3 * x[:, 0], task="regression")
    spec = _spec([{"type": "dense", "units": 1, "activation": "linear"}],
                 {"loss": "mse", "optimizer": {"name": "sgd", "learning_rate": 10.0}, "batch_size": 40,
                  "epochs": 100, "seed": 0, "metrics": ["mean_absolute_error"]},
                 dataset={"builtin": "diabetes"})
    rows = []
    with pytest.raises(Diverged) as err:
        fit(spec, data, Callbacks(on_epoch=rows.append))
    assert err.value.epoch == len(rows) + 1 > 1


def test_full_batch_is_one_step_per_epoch_and_loss_includes_the_penalty():
    data = _blobs(60)
    spec = _regularised_spec(batch_size=None, shuffle=False, epochs=4)
    trainer = Trainer(spec, data)
    result = trainer.fit()
    assert trainer.optimizer.iterations == 4
    # epoch 1's loss is the initial model's training-mode loss plus its penalties
    fresh = Trainer(spec, data)
    out = fresh.network.forward(fresh.train.x, training=True)
    expected = fresh.loss.per_sample(out, fresh.train.target).mean() + fresh.network.penalty()
    assert fresh.network.penalty() > 0
    assert result.history[0]["loss"] == pytest.approx(float(expected), rel=1e-6)


def test_a_saturated_sigmoid_reports_kerass_loss_not_a_clipped_one():
    # z = -30 and +30 for two positives: Keras's fit reports 15.0 (from the logits); clipping p at 1e-7 gave 8.06
    spec = _spec([{"type": "dense", "units": 1, "activation": "sigmoid", "use_bias": False,
                   "kernel_initializer": {"name": "constant", "value": 30.0}}],
                 {"optimizer": {"name": "sgd", "learning_rate": 1e-9}, "batch_size": None, "epochs": 1, "seed": 0})
    x = np.array([[-1.0], [1.0]])
    result = fit(spec, _data(x, np.array([1, 1]), classes=[0, 1]))
    assert result.history[0]["loss"] == pytest.approx(15.0, rel=1e-6)
    assert result.metrics["loss"] == pytest.approx(15.0, rel=1e-6)


def test_batch_size_larger_than_the_data_is_clipped():
    spec = _regularised_spec(batch_size=10_000, epochs=2)
    trainer = Trainer(spec, _blobs(50))
    trainer.fit()
    assert trainer.optimizer.iterations == 2


class _FakeNet:
    def __init__(self):
        self.value, self.restored = 0, None

    def get_weights(self):
        return [{"w": np.array(self.value)}]

    def set_weights(self, weights):
        self.restored = int(weights[0]["w"])


def test_early_stopping_follows_keras():
    stopper, net = EarlyStopper("val_loss", patience=2, min_delta=0.1, restore_best_weights=True), _FakeNet()
    losses = [1.0, 0.8, 0.75, 0.85, 0.5]  # 0.75 is not an improvement by more than min_delta
    stops = []
    for epoch, loss in enumerate(losses, 1):
        net.value = epoch
        stops.append(stopper.update(epoch, {"val_loss": loss}, net))
    assert stops == [False, False, False, True, False][:len(stops)]
    assert net.restored == 2  # the best epoch's weights
    acc = EarlyStopper("accuracy", patience=0)
    assert not acc.update(1, {"accuracy": 0.5}, net)  # never stops after the first epoch
    assert not acc.update(2, {"accuracy": 0.6}, net)
    assert acc.update(3, {"accuracy": 0.6}, net)


def test_a_non_finite_monitored_value_is_no_improvement():
    # history rows carry NaN / inf as None; Keras counts a NaN val_loss as not improving, so patience runs out
    stopper, net = EarlyStopper("val_loss", patience=2), _FakeNet()
    rows = [{"val_loss": 1.0}, {"val_loss": None}, {"val_loss": None}]
    assert [stopper.update(epoch, row, net) for epoch, row in enumerate(rows, 1)] == [False, False, True]
    assert not EarlyStopper("val_loss", patience=0).update(2, {"loss": 1.0}, net)  # not monitored this epoch


def test_training_stops_early_once_the_monitor_stalls():
    spec = _spec([{"type": "dense", "units": 1, "activation": "step"}],
                 {"optimizer": "perceptron", "batch_size": 1, "epochs": 100, "seed": 3, "metrics": ["accuracy"],
                  "early_stopping": {"monitor": "accuracy", "patience": 4}})
    result = fit(spec, _gate("and"))
    accuracies = [row["accuracy"] for row in result.history]
    best = accuracies.index(max(accuracies)) + 1  # the first epoch with the best value; later ties don't improve
    assert result.stopped_early and len(result.history) == best + 4 < 100
