"""Keras's `fit` epoch loop for small data: the compiled train step driven directly, without `fit`'s per-epoch cost.

`model.fit` spends tens of milliseconds around each epoch's steps (a fresh tf.data iterator,
callback dispatch, metric reads): a job of a few batches per epoch, like the course notes'
XOR models (1000 epochs of four rows), spends nearly all its time there. `fit` below takes
`model.fit`'s arguments, calls the same Keras callbacks and gives the same numbers:

- Batches: the ones Keras's own epoch iterator yields (`TFEpochIterator`, built as
  `model.fit` builds it), gathered once. With a global seed set (the backend always sets
  one), TensorFlow's `fit` shuffles every epoch with the same permutation, because each
  epoch's new iterator restarts the seeded shuffle kernel. That is checked, not assumed: two
  epochs are drawn and compared; if they differ, or the data is large, `model.fit` runs.
- Steps: the model's compiled `train_function` / `test_function` (`make_train_function`),
  the metrics reset before and read after each phase as `fit` and `evaluate` do, the
  optimizer's `finalize_variable_values` at the end.
- A "stepped" epoch calls the step from Python with the batch hooks around each call, as
  `fit` does (a cancellation is seen between batches). Once the metrics and the optimizer
  exist and many epochs remain, a "fused" epoch runs reset, steps, validation and the metric
  reads in one `tf.function` call (a `tf.while_loop` over the full batches, the short last
  batch after it) with only the epoch hooks: a cancellation is seen at the epoch's end.
- Not called: the test hooks (`on_test_*`) that `fit`'s validation passes to `evaluate`;
  no callback trainyard uses has them.

TensorFlow and Keras are imported inside the functions, never when `core` is imported.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

MAX_BYTES = 32 << 20  # data above this (train + validation) trains in `model.fit`: beside its epoch, fit's cost is small
MAX_BATCHES = 256  # likewise for more batches per epoch (the MNIST-shaped job has 469)
FUSE_MIN_EPOCHS = 50  # tracing the fused epoch costs as much as about a hundred stepped XOR epochs
UNROLL = 2  # at most this many full batches run unrolled in a fused epoch; more run in a tf.while_loop

Batch = tuple  # (x, y) or (x, y, sample_weight) tensors, as the epoch iterator yields them
Logs = dict[str, float]


def fit(model: Any, x: np.ndarray, y: np.ndarray, *, batch_size: int, epochs: int, initial_epoch: int = 0,
        shuffle: bool = True, validation_data: tuple | None = None, callbacks: list | tuple = ()) -> str:
    """`model.fit(x, y, ..., verbose=0)`; returns the loop that ran: "fit", "stepped" or "fused" (at the end)."""
    nbytes = x.nbytes + y.nbytes + (sum(a.nbytes for a in validation_data) if validation_data is not None else 0)
    train = val = None
    if nbytes <= MAX_BYTES and not model.run_eagerly:
        train = fit_batches(model, x, y, batch_size, shuffle)
        val = [] if validation_data is None else fit_batches(model, *validation_data, batch_size, False)
    if train is None or val is None:
        model.fit(x, y, batch_size=batch_size, epochs=epochs, initial_epoch=initial_epoch, shuffle=shuffle,
                  validation_data=validation_data, callbacks=list(callbacks), verbose=0)
        return "fit"
    return _loop(model, train, val, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks)


def fit_batches(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool) -> list[Batch] | None:
    """The batches `model.fit` feeds each epoch, in its order; None if they are many or differ between epochs."""
    import tensorflow as tf

    if math.ceil(len(x) / batch_size) > MAX_BATCHES or tf.distribute.has_strategy():
        return None
    try:  # private in Keras 3: whatever it cannot do here, `model.fit` still can
        from keras.src.backend.tensorflow.trainer import TFEpochIterator

        iterator = TFEpochIterator(x=x, y=y, batch_size=batch_size, shuffle=shuffle,
                                   distribute_strategy=model.distribute_strategy)
        iterator.reset()
        first, second = _one_epoch(iterator), _one_epoch(iterator)
    except (ImportError, TypeError, AttributeError):
        return None
    return first if _same(first, second) else None


def _one_epoch(iterator: Any) -> list[Batch]:
    batches = []
    with iterator.catch_stop_iteration():
        for _, _, data in iterator:  # steps_per_execution 1: one batch per yield
            batches.append(tuple(next(data)))
    return batches


def _same(a: list[Batch], b: list[Batch]) -> bool:
    import tensorflow as tf

    return len(a) == len(b) and all(np.array_equal(u.numpy(), v.numpy())
                                    for p, q in zip(a, b) for u, v in zip(tf.nest.flatten(p), tf.nest.flatten(q)))


def _loop(model: Any, train: list[Batch], val: list[Batch], *, epochs: int, initial_epoch: int,
          callbacks: list | tuple) -> str:
    """`fit`'s epoch loop (keras/src/backend/tensorflow/trainer.py) over batches gathered once."""
    import keras

    hooks = keras.callbacks.CallbackList(list(callbacks), add_history=True, add_progbar=False, model=model,
                                         verbose=0, epochs=epochs, steps=len(train))
    model.stop_training = False
    model.make_train_function()
    if val:
        model.make_test_function()
    run: Callable[[], Logs] = functools.partial(_stepped_epoch, model, train, val, hooks)
    loop, logs = "stepped", None
    hooks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        if loop == "stepped" and epoch > initial_epoch and epochs - epoch >= FUSE_MIN_EPOCHS:
            # one stepped epoch first: Keras builds the compiled metrics and the optimizer's slots in the first
            # step it traces, and a metric not yet built is skipped by a reset traced before it
            run, loop = fused_epoch(model, train, val), "fused"
        hooks.on_epoch_begin(epoch)
        logs = run()
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    if epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    hooks.on_train_end(logs)
    return loop


def _stepped_epoch(model: Any, train: list[Batch], val: list[Batch], hooks: Any) -> Logs:
    """One epoch as `fit` runs it: steps_per_execution batches per call of the compiled function, hooks around each."""
    model.reset_metrics()
    k = model.steps_per_execution
    for begin in range(0, len(train), k):
        hooks.on_train_batch_begin(begin)
        step_logs = model.train_function(iter(train[begin:begin + k]))
        hooks.on_train_batch_end(begin + k - 1, step_logs)
        if model.stop_training:
            break
    logs = {name: float(v) for name, v in model.get_metrics_result().items()}
    if val:
        model.reset_metrics()  # as `evaluate` does: validation reads the same metric objects
        for begin in range(0, len(val), k):
            model.test_function(iter(val[begin:begin + k]))
        logs.update({f"val_{name}": float(v) for name, v in model.get_metrics_result().items()})
    return logs


def fused_epoch(model: Any, train: list[Batch], val: list[Batch]) -> Callable[[], Logs]:
    """One epoch (reset, steps, metrics; then validation's) in one call of a `tf.function` traced once."""
    import tensorflow as tf

    train_steps, val_steps = _Steps(train), _Steps(val)

    @tf.function(autograph=False)
    def epoch() -> dict:
        model.reset_metrics()
        train_steps.run(model.train_function)
        logs = dict(model.get_metrics_result())
        if val:
            model.reset_metrics()
            val_steps.run(model.test_function)
            logs.update({f"val_{name}": v for name, v in model.get_metrics_result().items()})
        return logs

    return lambda: {name: float(v) for name, v in epoch().items()}


class _Steps:
    """An epoch's batches for a traced function: the full ones stacked (a loop over them), the short last one apart."""

    def __init__(self, batches: list[Batch]):
        import tensorflow as tf

        short = len(batches) > 1 and _rows(batches[-1]) != _rows(batches[0])
        full, self.rest = (batches[:-1], batches[-1:]) if short else (batches, [])
        self.unrolled = full if len(full) <= UNROLL else []
        self.n = 0 if self.unrolled else len(full)
        self.stacked = tf.nest.map_structure(lambda *t: tf.stack(t), *full) if self.n else None

    def run(self, function: Callable) -> None:
        """Call `function` (the model's compiled train or test function) on each batch, in order."""
        import tensorflow as tf

        for batch in self.unrolled:
            function(iter([batch]))
        if self.n:
            def body(i: Any) -> tuple:
                function(iter([tf.nest.map_structure(lambda t: t[i], self.stacked)]))
                return (i + 1,)

            # one iteration at a time: each step reads the weights the previous one wrote
            tf.while_loop(lambda i: i < self.n, body, (tf.constant(0),), parallel_iterations=1)
        for batch in self.rest:
            function(iter([batch]))


def _rows(batch: Batch) -> int:
    return int(batch[0].shape[0])
