"""The Keras backend: a spec trained on TensorFlow (`keras_loop.fit`: `model.fit`'s numbers without its per-epoch
cost on small data), reported through a callback, saved as `.keras`.

TensorFlow is imported inside the functions here, never when `core` is imported.
"""

from __future__ import annotations

import functools
import math
import os
import time
from typing import Any

import numpy as np

from trainyard.core.backends import keras_build as kb
from trainyard.core.backends import keras_loop, keras_modelfile
from trainyard.core.backends.base import TrainResult
from trainyard.core.callbacks import Callbacks
from trainyard.core.capabilities import table_errors
from trainyard.core.datasets.prepared import PreparedData
from trainyard.core.errors import Diverged
from trainyard.core.metrics import evaluate, minimised
from trainyard.core.spec import JobSpec, normalised
from trainyard.core.targets import decode, encode

OPTION_CHECKS = {
    "jit_compile": lambda v: None if v in (True, False, "auto") else "must be true, false or \"auto\"",
    "steps_per_execution": lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else "must be an integer >= 1",
    "intra_op_threads": lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "must be an integer >= 0 (0: TensorFlow decides)",
    "inter_op_threads": lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "must be an integer >= 0 (0: TensorFlow decides)",
}


def check(spec: JobSpec) -> list[dict]:
    """What Keras cannot express in `spec` (its backend_options defaults are filled by core/spec/defaults.py)."""
    errors = table_errors(spec)
    for key, value in spec.backend_options.items():
        problem = OPTION_CHECKS[key](value) if key in OPTION_CHECKS else None
        if problem:
            errors.append({"loc": f"backend_options.{key}", "msg": problem})
    return errors


# TensorFlow's thread pools: the job option that sizes each, and the variable that fixes it for a whole process.
THREAD_ENV = {"intra_op_threads": "TF_NUM_INTRAOP_THREADS", "inter_op_threads": "TF_NUM_INTEROP_THREADS"}


def _job_threads(spec: JobSpec) -> dict[str, int]:
    """The job's thread counts TensorFlow gets: none where the process's environment fixes the pool.

    TensorFlow sizes its pools once per process and cannot resize them. A worker exports both
    variables from its settings before any job (worker/main.py), so every job in its pool
    processes runs with the worker's pools and none inherits another's; `trainyard run` trains
    one job per process, so there the job's own values apply.
    """
    return {option: spec.backend_options.get(option, 0) for option, env in THREAD_ENV.items() if env not in os.environ}


def _device(spec: JobSpec) -> str:
    """Threads (see `_job_threads`) and GPU visibility, settable only before TensorFlow starts in this process."""
    import tensorflow as tf

    threads = _job_threads(spec)
    gpus = tf.config.list_physical_devices("GPU")
    try:
        if "intra_op_threads" in threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads["intra_op_threads"])
        if "inter_op_threads" in threads:
            tf.config.threading.set_inter_op_parallelism_threads(threads["inter_op_threads"])
        if spec.device == "cpu":
            tf.config.set_visible_devices([], "GPU")
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # TensorFlow already started in this process; tf.device below still picks the device
    return "/GPU:0" if spec.device == "gpu" and gpus else "/CPU:0"


class EpochReport:
    """History rows, epoch-end metrics Keras lacks, divergence, cancellation and checkpoints."""

    def __init__(self, spec: JobSpec, data: PreparedData, callbacks: Callbacks, history: list[dict], start: float):
        self.spec, self.data, self.callbacks, self.history = spec, data, callbacks, history
        self.extra = [m for m in spec.training.metrics or () if m not in kb.KERAS_METRICS]
        self.start = start

    def check(self) -> None:
        if self.callbacks.check:
            self.callbacks.check()

    def _extra_metrics(self, model: Any, logs: dict) -> None:
        """precision / recall / f1 (macro) on the training split, and the validation split, at the epoch's end."""
        d = self.data
        for prefix, x, y in (("", d.x_train, d.y_train), ("val_", d.x_val, d.y_val)):
            if len(x):
                out = decode(np.asarray(model.predict(x, batch_size=1024, verbose=0)), d.task)
                scores = evaluate(self.extra, d.task, y, out, d.n_classes)
                logs.update({f"{prefix}{m}": scores[m] for m in self.extra})

    def epoch_end(self, model: Any, epoch: int, logs: dict) -> None:
        """Called by Keras with 0-based `epoch`; `logs` is shared with later callbacks (EarlyStopping)."""
        if not math.isfinite(logs.get("loss", math.nan)):
            raise Diverged(epoch + 1)
        if self.extra:
            self._extra_metrics(model, logs)
        row = {"epoch": epoch + 1, "loss": float(logs["loss"])}
        row.update({k: float(logs[k]) for k in self._ordered(logs)})
        row["time"] = time.monotonic() - self.start
        self.history.append(row)
        if self.callbacks.on_epoch:
            self.callbacks.on_epoch(row)
        t = self.spec.training
        if self.callbacks.checkpoint_due(epoch + 1, t.checkpoint_every, t.epochs):
            state = keras_modelfile.dump(model, {"epoch": epoch + 1, "history": self.history, "spec": normalised(self.spec),
                                                 "preprocessing": self.data.preprocessing.to_dict()})
            self.callbacks.on_checkpoint(epoch + 1, state)
        self.check()

    def _ordered(self, logs: dict) -> list[str]:
        names = [m for m in self.spec.training.metrics or ()]
        keys = names + ["val_loss"] + [f"val_{m}" for m in names]
        return [k for k in keys if k in logs]


@functools.cache
def _reporter_class() -> type:
    import keras

    class Reporter(keras.callbacks.Callback):
        """Forwards Keras's hooks to an EpochReport."""

        async_safe = True  # check() may run on Keras's callback thread; an exception it raises still stops fit

        def __init__(self, report: EpochReport):
            super().__init__()
            self.report = report

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.report.check()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.report.epoch_end(self.model, epoch, logs if logs is not None else {})

    return Reporter


def _early_stopping(spec: JobSpec) -> list:
    import keras

    es = spec.training.early_stopping
    if es is None:
        return []
    mode = "min" if minimised(es.monitor) else "max"
    return [keras.callbacks.EarlyStopping(monitor=es.monitor, patience=es.patience, min_delta=es.min_delta,
                                          restore_best_weights=es.restore_best_weights, mode=mode)]


def _model(spec: JobSpec, data: PreparedData, callbacks: Callbacks) -> tuple[Any, int, list[dict]]:
    """A compiled model and the epoch it starts from: fresh, or resumed from a checkpoint."""
    if callbacks.resume is not None:
        model, meta = keras_modelfile.load(callbacks.resume, compile=True)
        return model, int(meta["epoch"]), list(meta["history"])
    model = kb.build_model(spec, data.x_train.shape[1])
    o = spec.backend_options
    model.compile(optimizer=kb.optimizer(spec), loss=kb.loss(spec), metrics=kb.metrics(spec),
                  jit_compile=o.get("jit_compile", "auto"), steps_per_execution=o.get("steps_per_execution", 1))
    return model, 0, []


def _final_metrics(spec: JobSpec, model: Any, data: PreparedData) -> dict:
    """The final model in inference mode on each split: loss (penalties included) and trainyard's metrics."""
    metrics: dict[str, Any] = {}
    names = list(spec.training.metrics or ())
    units = spec.model.output.units
    for prefix, x, y in (("", data.x_train, data.y_train), ("val_", data.x_val, data.y_val),
                         ("test_", data.x_test, data.y_test)):
        if len(x) == 0:
            continue
        x = x.astype(np.float32)
        out = np.asarray(model.predict(x, batch_size=1024, verbose=0))
        # evaluate, not the loss of `out`: Keras takes a sigmoid/softmax output's cross-entropy from its logits
        # (as fit did for the history), which predict's probabilities no longer carry; penalties included
        target = encode(y, data.task, units, np.float32)
        metrics[f"{prefix}loss"] = float(model.evaluate(x, target, batch_size=1024, verbose=0, return_dict=True)["loss"])
        scores = evaluate(names, data.task, y, decode(out, data.task), data.n_classes)
        metrics.update({f"{prefix}{k}": v for k, v in scores.items()})
    return metrics


def train(spec: JobSpec, data: PreparedData, callbacks: Callbacks) -> TrainResult:
    """Fit with Keras (`keras_loop.fit`), evaluate every split, save a self-contained .keras file."""
    import keras
    import tensorflow as tf

    device = _device(spec)
    keras.utils.set_random_seed(spec.training.seed)
    units, t = spec.model.output.units, spec.training
    x = data.x_train.astype(np.float32)
    y = encode(data.y_train, data.task, units, np.float32)
    val = (data.x_val.astype(np.float32), encode(data.y_val, data.task, units, np.float32)) if len(data.x_val) else None
    batch = len(x) if t.batch_size is None else min(t.batch_size, len(x))
    start = time.monotonic()
    with tf.device(device):
        model, initial_epoch, history = _model(spec, data, callbacks)
        report = EpochReport(spec, data, callbacks, history, start)
        stoppers = _early_stopping(spec)
        keras_loop.fit(model, x, y, batch_size=batch, epochs=t.epochs, initial_epoch=initial_epoch, shuffle=t.shuffle,
                       validation_data=val, callbacks=[_reporter_class()(report), *stoppers])
        metrics = _final_metrics(spec, model, data)
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
    return TrainResult(history=report.history, metrics=metrics,
                       model=keras_modelfile.export(model, spec, data.preprocessing, versions),
                       format="keras", stopped_early=bool(stoppers and stoppers[0].stopped_epoch > 0), versions=versions)


class KerasBackend:
    """Backend `keras`: keras.Sequential of Dense / Dropout / BatchNormalization on TensorFlow."""

    name = "keras"
    model_format = "keras"

    def check(self, spec: JobSpec) -> list[dict]:
        """What Keras cannot express in `spec` (step units, the perceptron rule, lbfgs); only checks."""
        return check(spec)

    def train(self, spec: JobSpec, data: PreparedData, callbacks: Callbacks) -> TrainResult:
        """Train and evaluate; raises Diverged / Cancelled / TimedOut."""
        return train(spec, data, callbacks)

    def load(self, model: bytes) -> keras_modelfile.KerasPredictor:
        """A predictor from a .keras model file (audited config, safe_mode=True)."""
        return keras_modelfile.load_predictor(model)
