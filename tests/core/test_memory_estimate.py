"""trainyard.core.spec.estimate_size against what training really allocates: its figure bounds the peak that tracemalloc sees
(numpy's allocations are traced), and is not wildly above it, for the shapes that exhausted workers (finding #4)."""

from __future__ import annotations

import tracemalloc

import pytest

from trainyard.core import datasets
from trainyard.core.job import train_job
from trainyard.core.spec import estimate_size
from trainyard.core.validate import validate_spec


def dense(units: int, activation: str = "relu") -> dict:
    return {"type": "dense", "units": units, "activation": activation}


def many_classes(k: int, per_class: int = 3) -> tuple:
    """An upload tuple (as `trainyard.core.datasets.load` takes it): a CSV of `k` classes, `per_class` rows each."""
    text = "x,label\n" + "".join(f"{i % 97},c{i % k}\n" for i in range(k * per_class))
    return text.encode(), "csv", "label", "classification", None


MOONS = {"builtin": "moons", "n_samples": 20_000}
CASES = {
    "big batch": ({"dataset": MOONS, "model": {"layers": [dense(256), dense(256), dense(1, "sigmoid")]},
                   "training": {"batch_size": 4096, "optimizer": "adam"}}, None),
    "full batch": ({"dataset": MOONS, "model": {"layers": [dense(256), dense(256), dense(1, "sigmoid")]},
                    "training": {"batch_size": None}}, None),
    "many classes": ({"dataset": {"id": "d", "test_split": 0}, "model": {"layers": [dense(600, "softmax")]},
                      "training": {"batch_size": 64}}, many_classes(600)),
}


@pytest.fixture(scope="module")
def warm() -> None:
    """Train once untraced, so first-use imports and compiles (scikit-learn, the numba Adam kernel) are not in the peaks."""
    train_job(validate_spec({"dataset": {"builtin": "moons", "n_samples": 40}, "training": {"optimizer": "adam"},
                             "model": {"layers": [dense(256), dense(256), dense(1, "sigmoid")]}}))


@pytest.mark.parametrize("case", CASES)
def test_the_estimate_bounds_the_measured_peak(case, warm):
    doc, upload = CASES[case]
    spec = validate_spec({**doc, "training": {"epochs": 2, "seed": 1, **doc["training"]}})
    info = datasets.describe(datasets.load(spec.dataset, upload=upload))
    estimate = estimate_size(spec, info)["bytes"]
    tracemalloc.start()
    try:
        train_job(spec, upload=upload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= estimate <= 4 * peak, (peak, estimate)
