"""Benchmark of the one JSON-finite helper, core.jsonsafe.json_safe, against the helpers it replaced (run by hand).

    git worktree add /tmp/ty-6d28a4f 6d28a4f
    .venv/bin/python bench/bench_json_safe.py --baseline-root /tmp/ty-6d28a4f [--repeat 7] [--rows 1000]

The baseline's `api.jsonio.finite` (every API response went through it) and `core.job.json_safe` (JSON columns
that fail the store's fast path, `trainyard run`'s output) are imported from that checkout's files and timed beside
the new helper in one run, alternating, on the shapes they see: a history page of `--rows` rows (floats, one
NaN in ten), a job body (metrics, spec, timestamps) and a prediction of 1,000 x 10 probabilities. Prints
the median and range of `--repeat` runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from trainyard.core.jsonsafe import json_safe

def baseline(root: Path, path: str, name: str):
    """Function `name` of the file `path` in the checkout at `root`, imported as a module (its imports resolve here)."""
    spec = importlib.util.spec_from_file_location(f"baseline_{Path(path).stem}", root / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def payloads(rows: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    history = [{"epoch": i + 1, "loss": float(rng.random()), "accuracy": float(rng.random()),
                "val_loss": math.nan if i % 10 == 0 else float(rng.random()), "val_accuracy": float(rng.random()),
                "time": i * 0.01} for i in range(rows)]
    now = datetime.now(timezone.utc)
    job = {"id": "j" * 26, "metrics": {"loss": 0.1, "accuracy": 0.9, "val_loss": math.inf, "confusion_matrix":
           [[5, 1], [0, 6]]}, "spec": {"model": {"layers": [{"type": "dense", "units": 8}] * 4}},
           "created_at": now, "started_at": now, "finished_at": None, "links": {"self": "/x"}}
    predict = {"predictions": rng.integers(0, 10, 1000).tolist(), "probabilities": rng.random((1000, 10)).tolist()}
    return {"history page": {"rows": history}, "job body": job, "prediction": predict}


def time_ms(fn, value, inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn(value)
    return (time.perf_counter() - start) * 1000 / inner


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline-root", type=Path, required=True,
                        help="a checkout of the code before the change, e.g. `git worktree add /tmp/ty-6d28a4f 6d28a4f`")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    helpers = {"api finite (old)": baseline(args.baseline_root, "api/jsonio.py", "finite"),
               "core json_safe (old)": baseline(args.baseline_root, "core/job.py", "json_safe"),
               "json_safe (new)": json_safe}
    for what, value in payloads(args.rows).items():
        inner = 2000 if what == "job body" else 20
        times: dict[str, list[float]] = {name: [] for name in helpers}
        for _ in range(args.repeat):
            for name, fn in helpers.items():  # alternated, so load on the machine falls on all alike
                if what == "job body" and "core" in name:
                    continue  # the old core helper cannot take datetimes (the store never gave it any)
                times[name].append(time_ms(fn, value, inner))
        for name, got in times.items():
            if got:
                print(f"{what:13s} {name:22s} median {statistics.median(got):8.3f} ms  "
                      f"range {min(got):.3f}-{max(got):.3f}")


if __name__ == "__main__":
    main()
