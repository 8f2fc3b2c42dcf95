"""Benchmark of the Keras backend beside a plain `model.fit` script (run by hand, never as a timed test).

    .venv/bin/python bench/bench_keras.py [--repeat 3] [--xor-epochs 1000] [--mnist-epochs 3] [--only xor|mnist]

1. The course notes' three Keras XOR models (examples/keras_xor_model{1,2,3}.json: four rows,
   batch 4, 1000 epochs). Plain: the backend's own model and compile (keras_build), then one
   `model.fit` call, as the notes' script does. Backend: `get_backend("keras").train` on the
   example's spec (core/backends/keras_loop.py drives the compiled step). Figures: the median
   steady epoch, the training time (model build to the last epoch's end), the backend job's
   whole time (final metrics and the .keras file included), the loop the backend ran, and the
   largest relative difference between the two sides' per-epoch losses (same seed: 0 when
   equal). Goal: training >= 10 x faster than plain fit, losses equal to 1e-6 relative.
2. The MNIST-shaped task of bench_engine.py (60,000 x 784 float32 -> 128 ReLU -> 10 softmax,
   Adam 0.001, batch 128, shuffled): the first epoch (model build and tracing included) and the
   steady epochs (median). Goal: the backend's steady epoch no slower than plain fit's.

Each run is a fresh process, so both sides pay the same TensorFlow start-up (reported apart as
`import`); the sides alternate, `--repeat` times, so a busy spell on a shared machine hits
both alike. Figures are medians with the range (min-max) over the repeats.
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

XOR_MODELS = ("keras_xor_model1", "keras_xor_model2", "keras_xor_model3")


def _epoch_figures(start: float, stamps: list[float]) -> dict:
    """First epoch, median steady epoch and the training time, from the end-of-epoch clock readings."""
    durations = [b - a for a, b in zip([start] + stamps, stamps)]
    return {"first_epoch_s": durations[0], "train_s": stamps[-1] - start,
            "steady_epoch_ms": 1e3 * statistics.median(durations[1:]) if len(durations) > 1 else None}


def _import_tensorflow() -> float:
    t0 = time.perf_counter()
    import tensorflow  # noqa: F401  (timed here so both sides report the same import)

    return time.perf_counter() - t0


def _recording_loops() -> list[str]:
    """The loop each keras_loop.fit call runs ("fit", "stepped", "fused"), as the backend trains."""
    from trainyard.core.backends import keras_loop

    ran: list[str] = []
    fit = keras_loop.fit
    keras_loop.fit = lambda *a, **k: ran.append(fit(*a, **k)) or ran[-1]
    return ran


def _xor_job(name: str, epochs: int):
    """The example's spec, validated and finalised, and its data prepared, as a worker does it."""
    from trainyard.core.datasets import describe, load, prepare
    from trainyard.core.spec import finalize_spec
    from trainyard.core.validate import validate_spec

    doc = json.loads((ROOT / "examples" / f"{name}.json").read_text())
    doc["training"]["epochs"] = epochs
    spec = validate_spec(doc)
    raw = load(spec.dataset)
    finalize_spec(spec, describe(raw))
    return spec, prepare(raw, spec.dataset)


def xor_plain(name: str, epochs: int) -> dict:
    """A plain script: the backend's model and compile, one model.fit call, a clock at each epoch's end."""
    imported = _import_tensorflow()
    import keras
    import numpy as np

    from trainyard.core.backends import keras_build as kb
    from trainyard.core.targets import encode

    spec, data = _xor_job(name, epochs)
    x = data.x_train.astype(np.float32)
    y = encode(data.y_train, data.task, spec.model.output.units, np.float32)
    stamps: list[float] = []
    stamp = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()))
    start = time.perf_counter()
    keras.utils.set_random_seed(spec.training.seed)
    model = kb.build_model(spec, x.shape[1])
    model.compile(optimizer=kb.optimizer(spec), loss=kb.loss(spec), metrics=kb.metrics(spec))
    history = model.fit(x, y, batch_size=spec.training.batch_size, epochs=epochs, shuffle=spec.training.shuffle,
                        callbacks=[stamp], verbose=0)
    return {"import_s": imported, **_epoch_figures(start, stamps), "losses": history.history["loss"]}


def xor_backend(name: str, epochs: int) -> dict:
    """Through trainyard: get_backend("keras").train on the example's spec."""
    imported = _import_tensorflow()
    from trainyard.core.backends import get_backend
    from trainyard.core.callbacks import Callbacks

    loops = _recording_loops()
    spec, data = _xor_job(name, epochs)
    stamps: list[float] = []
    start = time.perf_counter()
    result = get_backend("keras").train(spec, data, Callbacks(on_epoch=lambda row: stamps.append(time.perf_counter())))
    job = time.perf_counter() - start
    return {"import_s": imported, **_epoch_figures(start, stamps), "job_s": job, "loop": loops[0],
            "losses": [row["loss"] for row in result.history]}


def mnist_backend(epochs: int) -> dict:
    """Through trainyard: get_backend("keras").train with the same spec a job would have."""
    imported = _import_tensorflow()
    from trainyard.core.backends import get_backend
    from trainyard.core.callbacks import Callbacks
    from trainyard.core.validate import validate_spec

    loops = _recording_loops()
    x, y = mnist_like()
    spec = validate_spec({"backend": "keras", "dataset": {"builtin": "mnist"}, "model": {"layers": [
        {"type": "dense", "units": HIDDEN, "activation": "relu"}, {"type": "dense", "units": CLASSES, "activation": "softmax"}]},
        "training": {"optimizer": {"name": "adam", "learning_rate": 0.001}, "batch_size": BATCH, "epochs": epochs,
                     "seed": 0, "metrics": ["accuracy"]}})
    stamps: list[float] = []
    start = time.perf_counter()
    result = get_backend("keras").train(spec, data_for(x, y), Callbacks(on_epoch=lambda row: stamps.append(time.perf_counter())))
    job = time.perf_counter() - start
    return {"import_s": imported, **_epoch_figures(start, stamps), "job_s": job, "loop": loops[0],
            "accuracy": result.metrics["accuracy"]}


def mnist_plain(epochs: int) -> dict:
    """The same model written directly in Keras, timed by a minimal callback."""
    imported = _import_tensorflow()
    import keras
    import numpy as np

    x, y = mnist_like()
    stamps: list[float] = []
    stamp = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()))
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(HIDDEN, activation="relu"),
                              keras.layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, np.eye(CLASSES, dtype=np.float32)[y], batch_size=BATCH, epochs=epochs, shuffle=True,
                        callbacks=[stamp], verbose=0)
    return {"import_s": imported, **_epoch_figures(start, stamps), "accuracy": history.history["accuracy"][-1]}


CHILDREN = {"xor-plain": xor_plain, "xor-backend": xor_backend, "mnist-plain": mnist_plain,
            "mnist-backend": mnist_backend}


def _child(mode: str, *args: str | int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, *map(str, args)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _spread(runs: list[dict], key: str, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    values = [r[key] * scale for r in runs]
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _max_rel(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b), (len(a), len(b))
    return max(abs(u - v) / abs(v) if v else abs(u - v) for u, v in zip(a, b))


def bench_xor(repeat: int, epochs: int) -> None:
    print(f"Course notes' Keras XOR models, 4 rows, batch 4, {epochs} epochs; median (min-max) of {repeat}, "
          "each run a fresh process, plain and backend alternated")
    print(f"{'':18} {'side':8} {'import s':>17} {'steady epoch ms':>21} {'training s':>21} {'job s':>19}  loop")
    for name in XOR_MODELS:
        runs: dict[str, list[dict]] = {"plain": [], "backend": []}
        for _ in range(repeat):
            for side, rs in runs.items():
                rs.append(_child(f"xor-{side}", name, epochs))
        for side, rs in runs.items():
            job = _spread(rs, "job_s") if side == "backend" else "-"
            loop = ",".join(sorted({r["loop"] for r in rs})) if side == "backend" else "fit"
            print(f"{name:18} {side:8} {_spread(rs, 'import_s'):>17} {_spread(rs, 'steady_epoch_ms'):>21} "
                  f"{_spread(rs, 'train_s'):>21} {job:>19}  {loop}")
        plain, ours = runs["plain"], runs["backend"]
        train = statistics.median(r["train_s"] for r in plain) / statistics.median(r["train_s"] for r in ours)
        epoch = (statistics.median(r["steady_epoch_ms"] for r in plain)
                 / statistics.median(r["steady_epoch_ms"] for r in ours))
        diff = max(_max_rel(o["losses"], p["losses"]) for o in ours for p in plain)
        print(f"{name:18} speed-up: training {train:.1f}x, steady epoch {epoch:.1f}x; "
              f"per-epoch losses, largest relative difference over all pairs of runs: {diff:.1e}")


def bench_mnist(repeat: int, epochs: int) -> None:
    runs: dict[str, list[dict]] = {"plain": [], "backend": []}
    for _ in range(repeat):
        for side, rs in runs.items():
            rs.append(_child(f"mnist-{side}", epochs))
    print(f"MNIST-shaped 60000x784 -> {HIDDEN} relu -> {CLASSES} softmax, Adam 0.001, batch {BATCH}, {epochs} epochs; "
          f"median (min-max) of {repeat}")
    print(f"{'side':8} {'import s':>17} {'1st epoch s':>19} {'steady epoch s':>21} {'job s':>19}  loop")
    for side, rs in runs.items():
        job = _spread(rs, "job_s") if side == "backend" else "-"
        loop = ",".join(sorted({r["loop"] for r in rs})) if side == "backend" else "fit"
        print(f"{side:8} {_spread(rs, 'import_s'):>17} {_spread(rs, 'first_epoch_s'):>19} "
              f"{_spread(rs, 'steady_epoch_ms', 1e-3, '{:.3f}'):>21} {job:>19}  {loop}")
    ratios = [o["steady_epoch_ms"] / p["steady_epoch_ms"] for o, p in zip(runs["backend"], runs["plain"])]
    print(f"backend / plain steady epoch, per alternated pair: median {statistics.median(ratios):.3f} "
          f"({min(ratios):.3f}-{max(ratios):.3f}); goal <= 1 within the noise")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--xor-epochs", type=int, default=1000)
    parser.add_argument("--mnist-epochs", type=int, default=3)
    parser.add_argument("--only", choices=("xor", "mnist"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        print(json.dumps(CHILDREN[mode](*rest[:-1], int(rest[-1]))))
        return
    if args.only != "mnist":
        bench_xor(args.repeat, args.xor_epochs)
    if args.only != "xor":
        bench_mnist(args.repeat, args.mnist_epochs)


if __name__ == "__main__":
    main()
