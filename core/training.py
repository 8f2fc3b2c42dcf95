"""The training loop: epochs of seeded mini-batches, per-epoch history, early stopping, checkpoints.

One `numpy.random.Generator` seeded from `training.seed` drives initialisation,
shuffling and dropout in that order, so the same spec and data give a bit-identical
history; its state is part of every checkpoint, so a resumed run continues exactly.
The loop reports through `Callbacks` and never prints.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from trainyard.core import heads, losses, metrics, optimizers
from trainyard.core.buffers import Buffers
from trainyard.core.callbacks import Callbacks
from trainyard.core.checkpoint import load_checkpoint, save_checkpoint
from trainyard.core.datasets.prepared import PreparedData
from trainyard.core.early_stopping import EarlyStopper
from trainyard.core.errors import DatasetError, Diverged
from trainyard.core.jsonsafe import json_safe
from trainyard.core.network import Network
from trainyard.core.spec import JobSpec, default_metrics
from trainyard.core.spec.memory import EVAL_ROWS
from trainyard.core.targets import decode, encode


@dataclass
class Split:
    """One split ready for the network: inputs, encoded targets and the labels metrics compare against."""

    x: np.ndarray
    target: np.ndarray  # (n, n_outputs): 0/1, one-hot or regression values
    labels: np.ndarray  # class indices (classification) or the regression values


@dataclass
class Fitted:
    network: Network
    history: list[dict]
    metrics: dict
    stopped_early: bool = False


class Trainer:
    """Trains one spec on one PreparedData; `fit()` returns the network, history and final metrics."""

    def __init__(self, spec: JobSpec, data: PreparedData, callbacks: Callbacks | None = None, dtype=np.float32):
        self.spec, self.data, self.callbacks = spec, data, callbacks or Callbacks()
        self.dtype = np.dtype(dtype)
        t = spec.training
        self.task, self.n_classes = data.task, data.n_classes
        self.names = list(t.metrics or default_metrics(self.task))
        self.rng = np.random.default_rng(t.seed)
        layer_configs = [layer.model_dump(mode="json") for layer in spec.model.layers]
        self.network = Network.from_configs(layer_configs, data.preprocessing.n_features, self.rng, self.dtype)
        self.loss = losses.get(t.loss)
        self.head = heads.head_for(self.network.output_layer, self.loss, self.network.uses_kernels)
        self.optimizer = optimizers.get(t.optimizer.model_dump(mode="json"))
        self.optimizer.build(self.network.params)
        self.train, self.val, self.test = (self._split(x, y) for x, y in (
            (data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)))
        if len(self.train.x) == 0:
            raise DatasetError("the training split is empty")
        es = t.early_stopping
        self.stopper = EarlyStopper(es.monitor, es.patience, es.min_delta, es.restore_best_weights) if es else None
        self.history: list[dict] = []
        self.buffers = Buffers()

    def _split(self, x: np.ndarray, y: np.ndarray) -> Split:
        x = np.ascontiguousarray(x, dtype=self.dtype)  # a copy when the dtype differs; never modified
        labels = np.asarray(y)
        return Split(x, encode(labels, self.task, self.network.n_outputs, self.dtype), labels)

    def fit(self) -> Fitted:
        """Run the remaining epochs (all of them unless resuming), then evaluate the final model."""
        # A diverging run overflows on its way to a non-finite loss; that is reported as Diverged, not warned.
        with np.errstate(over="ignore", invalid="ignore"):
            return self._fit()

    def _fit(self) -> Fitted:
        t, cb = self.spec.training, self.callbacks
        start_epoch, time_offset = 0, 0.0
        if cb.resume is not None:
            start_epoch = load_checkpoint(cb.resume, self)
            time_offset = self.history[-1]["time"] if self.history else 0.0
        started = time.perf_counter()
        stopped = False
        for epoch in range(start_epoch + 1, t.epochs + 1):
            row = {"epoch": epoch, **self._train_epoch(epoch)}
            if len(self.val.x):
                row.update({f"val_{k}": v for k, v in self.evaluate(self.val).items() if k != "confusion_matrix"})
            row = {k: (v if k == "epoch" else json_safe(v)) for k, v in row.items()}
            row["time"] = time_offset + time.perf_counter() - started
            self.history.append(row)
            if cb.on_epoch:
                cb.on_epoch(row)
            stopped = bool(self.stopper and self.stopper.update(epoch, row, self.network))
            # no checkpoint on the stopping epoch: the run ends there, a resume would go on past it
            if not stopped and cb.checkpoint_due(epoch, t.checkpoint_every, t.epochs):
                cb.on_checkpoint(epoch, save_checkpoint(self, epoch))
            if stopped:
                break
        return Fitted(self.network, self.history, self.final_metrics(), stopped)

    def get_state(self) -> dict:
        """What a resumed run needs, as `trainyard.core.checkpoint` stores it: the weights, the optimizer's and early
        stopper's own states (and its best weights), the Generator's state and the history so far."""
        stopper = self.stopper
        return {"weights": self.network.get_weights(), "optimizer": self.optimizer.get_state(),
                "rng": self.rng.bit_generator.state, "history": self.history,
                "early_stopping": stopper.get_state() if stopper is not None else None,
                "best_weights": stopper.best_weights if stopper is not None else None}

    def set_state(self, state: dict) -> None:
        """Continue from a `get_state()` (weights are copied into the network's own arrays)."""
        self.network.set_weights(state["weights"])
        self.optimizer.set_state(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.history = list(state["history"])
        if self.stopper is not None and state["early_stopping"] is not None:
            self.stopper.set_state(state["early_stopping"], state["best_weights"])

    def _train_epoch(self, epoch: int) -> dict:
        """One pass over the training split; the loss and metrics Keras's `fit` would log for it."""
        train, net, check = self.train, self.network, self.callbacks.check
        n = len(train.x)
        batch = min(self.spec.training.batch_size or n, n)
        order = self.rng.permutation(n) if self.spec.training.shuffle else None
        scores = _EpochScores(self.task, metrics.accumulator(self.task, self.n_classes, net.n_outputs), n)
        targets = self._in_order(train.target, order)
        loss_sum = 0.0
        for start in range(0, n, batch):
            if check:
                check()
            stop = min(start + batch, n)
            xb, tb = self._inputs(order, start, stop), targets[start:stop]
            out = net.forward(xb, training=True)
            penalty = net.penalty() * len(xb) if net.penalised else 0.0
            batch_loss = float(np.add.reduce(self._losses(out, tb))) + penalty
            if not math.isfinite(batch_loss):
                raise Diverged(epoch)
            loss_sum += batch_loss
            scores.add(out, start, stop, order, train.labels)
            net.backprop(self.head.delta(out, tb))
            self.optimizer.update(net.params, net.grads)
        return {"loss": loss_sum / n, **scores.result(self.names, order, train.labels)}

    def _losses(self, out: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Per-sample losses of the last forward pass (the head computes a fused pair's from the logits)."""
        return self.head.per_sample(out, target)

    def _inputs(self, order: np.ndarray | None, start: int, stop: int) -> np.ndarray:
        """Inputs of rows [start, stop) of the (shuffled) training split, gathered into a reused buffer."""
        x = self.train.x
        if order is None:
            return x[start:stop]
        idx = order[start:stop]
        xb = self.buffers.get("x", (len(idx), x.shape[1]), self.dtype)
        np.take(x, idx, axis=0, out=xb)
        return xb

    def _in_order(self, target: np.ndarray, order: np.ndarray | None) -> np.ndarray:
        """The epoch's targets in its order, gathered at once (small beside the inputs, gathered batch by batch)."""
        if order is None:
            return target
        return np.take(target, order, axis=0, out=self.buffers.get("targets", target.shape, self.dtype))

    def evaluate(self, split: Split, chunk: int = EVAL_ROWS) -> dict:
        """Loss (penalties included) and metrics of the current model in inference mode on one split."""
        net, loss_sum = self.network, 0.0
        predictions = []
        for start in range(0, len(split.x), chunk):
            stop = start + chunk
            out = net.forward(split.x[start:stop], training=False)
            loss_sum += float(self._losses(out, split.target[start:stop]).sum())
            predictions.append(np.array(decode(out, self.task)))
        result = metrics.evaluate(self.names, self.task, split.labels, np.concatenate(predictions), self.n_classes)
        return {"loss": loss_sum / len(split.x) + net.penalty(), **result}

    def final_metrics(self) -> dict:
        """The final model on train (`loss`, …), validation (`val_*`) and test (`test_*`)."""
        result: dict = {}
        for prefix, split in (("", self.train), ("val_", self.val), ("test_", self.test)):
            if len(split.x):
                for k, v in self.evaluate(split).items():
                    result[prefix + k] = v if k == "confusion_matrix" else json_safe(v)
        return result


class _EpochScores:
    """An epoch's training metrics from each mini-batch's outputs.

    Class predictions are kept in epoch order and counted once at the end (a confusion matrix is
    integer counts, so that equals counting batch by batch, at one call instead of one a batch);
    regression outputs go to the running sums batch by batch, in the order those floats add up.
    """

    def __init__(self, task: str, accumulator, n: int):
        self.accumulator = accumulator
        self.predictions = np.empty(n, np.int64) if task == "classification" else None
        self.task = task

    def add(self, out: np.ndarray, start: int, stop: int, order: np.ndarray | None, labels: np.ndarray) -> None:
        if self.predictions is not None:
            self.predictions[start:stop] = decode(out, self.task)
        else:
            self.accumulator.update(labels[start:stop] if order is None else labels[order[start:stop]],
                                    decode(out, self.task))

    def result(self, names: list[str], order: np.ndarray | None, labels: np.ndarray) -> dict:
        if self.predictions is not None:
            self.accumulator.update(labels if order is None else labels[order], self.predictions)
        return self.accumulator.result(names)


def fit(spec: JobSpec, data: PreparedData, callbacks: Callbacks | None = None, dtype=np.float32) -> Fitted:
    """Train `spec` on `data` with the numpy engine."""
    return Trainer(spec, data, callbacks, dtype).fit()
