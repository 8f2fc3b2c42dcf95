"""Benchmark of the numpy engine (run by hand, never as a timed test).

    .venv/bin/python bench/bench_engine.py [--repeat 3] [--epochs 2] [--skip-digits] [--cpu]

1. An MNIST-shaped task (60,000 x 784 float32 -> 128 ReLU -> 10 softmax, Adam 0.001,
   batch 128, shuffled): the engine's epoch time beside scikit-learn's MLPClassifier
   (float32, same architecture, one epoch = `max_iter=1`) and the floor (each step's
   unavoidable work timed alone: gathering the shuffled mini-batch and the five matrix
   products). Goals: engine <= 0.6 x scikit-learn and <= 1.25 x the floor.
2. Digits 64 -> 32 -> 10 relu/softmax, 50 epochs: test accuracy (goal >= 0.96) and the
   training time of the last history row (goal <= 0.3 s).

`--cpu` times this thread's CPU time with BLAS held to one thread (threadpoolctl), instead of
wall time with BLAS's own threads: on a small machine shared with other jobs, multi-threaded
BLAS's wall time mostly measures the others' load (the floor took 1.1 s quiet and 19 s at a
load of 15 on 2 cores), while one thread's CPU time barely moves.

Each figure is the best of `--repeat` runs, since other jobs may share the machine; the
engine/floor ratio of each repeat (floor and engine timed back to back) is printed too, with
its median and range. To compare two checkouts, alternate runs of this script on each (the
script itself is the same: point PYTHONPATH at the other checkout's `trainyard` package).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from trainyard.core.datasets.prepared import PreparedData, Preprocessing
from trainyard.core.spec import parse_spec
from trainyard.core.training import Trainer, fit

N, FEATURES, HIDDEN, CLASSES, BATCH = 60_000, 784, 128, 10, 128
clock = time.perf_counter  # --cpu: time.thread_time


def mnist_like(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pixels in [0, 1) and labels from a random linear teacher (so the task is learnable)."""
    rng = np.random.default_rng(seed)
    x = rng.random((N, FEATURES), dtype=np.float32)
    y = (x @ rng.normal(size=(FEATURES, CLASSES)).astype(np.float32)).argmax(axis=1)
    return x, y


def data_for(x, y, x_test=None, y_test=None) -> PreparedData:
    x_test = x[:0] if x_test is None else x_test
    y_test = y[:0] if y_test is None else y_test
    return PreparedData(x, y, x[:0], y[:0], x_test, y_test,
                        Preprocessing("classification", x.shape[1], list(range(int(y.max()) + 1))))


def spec_for(hidden: int, epochs: int, batch_size: int, seed: int = 0):
    return parse_spec({"dataset": {"builtin": "mnist"}, "model": {"layers": [
        {"type": "dense", "units": hidden, "activation": "relu"},
        {"type": "dense", "units": CLASSES, "activation": "softmax"}]},
        "training": {"optimizer": {"name": "adam", "learning_rate": 0.001}, "batch_size": batch_size,
                     "epochs": epochs, "seed": seed, "metrics": ["accuracy"]}})


def engine_epoch(x, y, epochs: int) -> float:
    """The fastest training epoch of one engine run (the trainer is built, and any kernels loaded, before)."""
    trainer = Trainer(spec_for(HIDDEN, epochs, BATCH), data_for(x, y))
    times = []
    for epoch in range(1, epochs + 1):
        start = clock()
        trainer._train_epoch(epoch)
        times.append(clock() - start)
    return min(times)


def sklearn_epoch(x, y) -> float:
    """One epoch of MLPClassifier: `fit` with max_iter=1 (its ConvergenceWarning silenced)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="adam", learning_rate_init=0.001,
                        batch_size=BATCH, max_iter=1, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = clock()
        clf.fit(x, y)
        elapsed = clock() - start
    assert clf.coefs_[0].dtype == np.float32, "scikit-learn should train in float32 here"
    return elapsed


def floor_epoch(x) -> float:
    """Gather each shuffled mini-batch and do the step's five matrix products, nothing else."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(FEATURES, HIDDEN)).astype(np.float32) * 0.05
    w2 = rng.normal(size=(HIDDEN, CLASSES)).astype(np.float32) * 0.05
    dw1, dw2 = np.empty_like(w1), np.empty_like(w2)
    order = rng.permutation(N)
    bufs = {}
    start = clock()
    for s in range(0, N, BATCH):
        idx = order[s:s + BATCH]
        n = len(idx)
        if n not in bufs:
            bufs[n] = [np.empty(shape, np.float32) for shape in
                       ((n, FEATURES), (n, HIDDEN), (n, CLASSES), (n, HIDDEN))]
        xb, h, out, dh = bufs[n]
        np.take(x, idx, axis=0, out=xb)
        np.dot(xb, w1, out=h)          # forward, hidden
        np.dot(h, w2, out=out)         # forward, output
        np.dot(h.T, out, out=dw2)      # output kernel gradient
        np.dot(out, w2.T, out=dh)      # back into the hidden layer
        np.dot(xb.T, dh, out=dw1)      # hidden kernel gradient
    return clock() - start


def digits(repeat: int) -> tuple[float, float]:
    """Best (accuracy, last-row time) of digits 64 -> 32 -> 10 over `repeat` runs."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order] / 16.0, y[order]
    cut = int(0.75 * len(x))
    data = data_for(x[:cut], y[:cut], x[cut:], y[cut:])
    runs = [fit(spec_for(32, 50, 32, seed=1), data) for _ in range(repeat)]
    return runs[0].metrics["test_accuracy"], min(r.history[-1]["time"] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="engine epochs per run (the fastest counts)")
    parser.add_argument("--skip-digits", action="store_true", help="only the MNIST-shaped figures")
    parser.add_argument("--cpu", action="store_true", help="this thread's CPU time, BLAS on one thread")
    args = parser.parse_args()
    if args.cpu:
        from threadpoolctl import threadpool_limits

        global clock
        clock = time.thread_time
        threadpool_limits(1)
    x, y = mnist_like()
    floor = engine = sk = float("inf")
    ratios = []
    for _ in range(args.repeat):  # interleaved, so a busy spell on a shared machine hits all three alike
        floors, engines = floor_epoch(x), engine_epoch(x, y, args.epochs)
        ratios.append(engines / floors)
        floor, engine = min(floor, floors), min(engine, engines)
        sk = min(sk, sklearn_epoch(x, y))
    print(f"MNIST-shaped epoch (60000x784 -> {HIDDEN} relu -> 10 softmax, adam, batch {BATCH}, float32), "
          f"best of {args.repeat}, {'CPU time, BLAS on 1 thread' if args.cpu else 'wall time'}:")
    print(f"  engine   {engine:7.3f} s")
    print(f"  sklearn  {sk:7.3f} s   engine/sklearn = {engine / sk:.2f}  (goal <= 0.60)")
    print(f"  floor    {floor:7.3f} s   engine/floor   = {engine / floor:.2f}  (goal <= 1.25)")
    print(f"  engine/floor per repeat: median {np.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f} "
          f"({' '.join(f'{r:.3f}' for r in ratios)})")
    if args.skip_digits:
        return
    accuracy, seconds = digits(args.repeat)
    print(f"digits 64->32->10, 50 epochs: test accuracy {accuracy:.4f} (goal >= 0.96), "
          f"training time {seconds:.3f} s (goal <= 0.3)")


if __name__ == "__main__":
    main()
