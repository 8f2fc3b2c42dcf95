"""Benchmark of the Keras backend beside a plain Keras script (run by hand, never as a timed test).

    .venv/bin/python bench/bench_keras.py [--repeat 2] [--epochs 3]

The MNIST-shaped task of bench_engine.py (60,000 x 784 float32 -> 128 ReLU -> 10 softmax,
Adam 0.001, batch 128, shuffled). Each side runs in a fresh process, so both pay the same
TensorFlow start-up: import time, the first epoch (model build and tracing included), the
steady epochs (median), and for the backend the time after `fit` (final metrics on the
training split and saving the .keras file). Goal: backend epochs within a few percent of
the plain script's, i.e. no overhead beyond `model.fit`. Each figure is the best of `--repeat`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_engine import BATCH, CLASSES, HIDDEN, data_for, mnist_like  # noqa: E402


def _epoch_figures(times: list[float]) -> dict:
    """First epoch and median steady epoch from cumulative end-of-epoch times."""
    durations = [b - a for a, b in zip([0.0] + times, times)]
    return {"first_epoch_s": durations[0], "steady_epoch_s": statistics.median(durations[1:]) if len(durations) > 1 else None}


def run_backend(epochs: int) -> dict:
    """Through trainyard: get_backend("keras").train with the same spec a job would have."""
    t0 = time.perf_counter()
    import tensorflow  # noqa: F401  (timed here so both sides report the same import)

    imported = time.perf_counter() - t0
    from trainyard.core.backends import get_backend
    from trainyard.core.callbacks import Callbacks
    from trainyard.core.validate import validate_spec

    x, y = mnist_like()
    spec = validate_spec({"backend": "keras", "dataset": {"builtin": "mnist"}, "model": {"layers": [
        {"type": "dense", "units": HIDDEN, "activation": "relu"}, {"type": "dense", "units": CLASSES, "activation": "softmax"}]},
        "training": {"optimizer": {"name": "adam", "learning_rate": 0.001}, "batch_size": BATCH, "epochs": epochs,
                     "seed": 0, "metrics": ["accuracy"]}})
    start = time.perf_counter()
    result = get_backend("keras").train(spec, data_for(x, y), Callbacks())
    total = time.perf_counter() - start
    times = [row["time"] for row in result.history]
    return {"import_s": imported, **_epoch_figures(times), "after_fit_s": total - times[-1],
            "accuracy": result.metrics["accuracy"]}


def run_plain(epochs: int) -> dict:
    """The same model written directly in Keras, timed by a minimal callback."""
    t0 = time.perf_counter()
    import keras
    import numpy as np
    import tensorflow  # noqa: F401

    imported = time.perf_counter() - t0
    x, y = mnist_like()
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(HIDDEN, activation="relu"),
                              keras.layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="categorical_crossentropy", metrics=["accuracy"])
    times: list[float] = []
    stamp = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: times.append(time.perf_counter() - start))
    history = model.fit(x, np.eye(CLASSES, dtype=np.float32)[y], batch_size=BATCH, epochs=epochs, shuffle=True,
                        callbacks=[stamp], verbose=0)
    return {"import_s": imported, **_epoch_figures(times), "accuracy": history.history["accuracy"][-1]}


def _child(mode: str, epochs: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--epochs", str(epochs)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best(runs: list[dict]) -> dict:
    return {k: min(r[k] for r in runs) if k != "accuracy" else runs[-1][k] for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--child", choices=("backend", "plain"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps((run_backend if args.child == "backend" else run_plain)(args.epochs)))
        return
    results = {}
    for mode in ("plain", "backend"):
        results[mode] = _best([_child(mode, args.epochs) for _ in range(args.repeat)])
    print(f"MNIST-shaped 60000x784 -> {HIDDEN} relu -> {CLASSES} softmax, Adam 0.001, batch {BATCH}, "
          f"{args.epochs} epochs, best of {args.repeat}")
    print(f"{'':10} {'import':>8} {'1st epoch':>10} {'epoch':>8} {'after fit':>10}")
    for mode, r in results.items():
        after = f"{r['after_fit_s']:9.2f}s" if "after_fit_s" in r else f"{'-':>10}"
        print(f"{mode:10} {r['import_s']:7.2f}s {r['first_epoch_s']:9.2f}s {r['steady_epoch_s']:7.2f}s {after}")
    ratio = results["backend"]["steady_epoch_s"] / results["plain"]["steady_epoch_s"]
    print(f"backend / plain steady epoch: {ratio:.3f}")


if __name__ == "__main__":
    main()
