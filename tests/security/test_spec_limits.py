"""Specs within memory and within size (issue 12, items 4–5): refused at submit with a 422 that names the field and the
setting, on SQLite and on PostgreSQL, before anything is queued; every example still passes.

Each hostile spec here was accepted before and then exhausted a worker (red-team findings #21, #23–27, #47).
"""

from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path

import pytest

from tests.support.api import problem, xor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GIB = 2**30


def dense(units: int, activation: str = "relu") -> dict:
    return {"type": "dense", "units": units, "activation": activation}


# Finding #25: 49.0M parameters on 10M moons; batch 100,000 took a pool process past 5 GB (killed, retried).
MOONS_WIDE = {"dataset": {"builtin": "moons", "n_samples": 10_000_000},
              "model": {"layers": [dense(7000), dense(7000), dense(1, "sigmoid")]},
              "training": {"epochs": 1, "batch_size": 100_000}}


def moons_wide(**training) -> dict:
    spec = copy.deepcopy(MOONS_WIDE)
    spec["training"].update(training)
    return spec


def errors(body: dict) -> dict[str, str]:
    return {e["loc"]: e["msg"] for e in body["errors"]}


def queued(api) -> list:
    return api.alice.get("/jobs").get_json()["items"]


def upload_csv(caller, text: str, target: str = "label"):
    return caller.post("/datasets", content_type="multipart/form-data",
                       data={"name": "d", "format": "csv", "target": target, "file": (io.BytesIO(text.encode()), "d.csv")})


def many_classes_csv(k: int) -> str:
    """One row per class: `k` distinct labels (finding #47b: 20,000 of them in 0.2 MB)."""
    return "x,label\n" + "".join(f"{i % 97},c{i}\n" for i in range(k))


# --- the memory estimate against worker_memory_bytes --------------------------------------------------------

def test_batch_activations_over_worker_memory_are_422_naming_batch_size(api_both):
    body = problem(api_both.alice.post("/jobs", json=MOONS_WIDE), 422)
    msg = errors(body)["training.batch_size"]
    assert "batch activations" in msg and "worker_memory_bytes" in msg and f"{4 * GIB:,}" in msg, msg
    assert "about 26.8 GiB of memory (batch activations 25.3 GiB, parameters and optimizer state 1.1 GiB" in msg, msg
    assert queued(api_both) == []
    # The same network with batch 32 fits (the red team saw its worker at 2.0 GB).
    assert api_both.alice.post("/jobs", json=moons_wide(batch_size=32)).status_code == 201


def test_full_batch_training_counts_the_whole_training_split(api_both):
    body = problem(api_both.alice.post("/jobs", json=moons_wide(batch_size=None)), 422)  # was: MemoryError 196 GiB
    msg = errors(body)["training.batch_size"]
    assert "batch_size null" in msg and "7,500,000 training rows" in msg and "worker_memory_bytes" in msg, msg
    assert queued(api_both) == []


def test_the_limit_is_the_setting(limited_both):
    api = limited_both(worker_memory_bytes=10 * 2**20)
    assert api.alice.post("/jobs", json=xor()).status_code == 201
    spec = xor(dataset={"builtin": "digits"}, model={"layers": [dense(512), dense(10, "softmax")]},
               training={"batch_size": 256})
    body = problem(api.alice.post("/jobs", json=spec), 422)
    assert f"{10 * 2**20:,} bytes (worker_memory_bytes)" in body["errors"][0]["msg"]


def test_twenty_thousand_classes_are_422_for_their_confusion_matrices_and_one_hot_targets(limited_both):
    api = limited_both(max_classes=50_000)
    r = upload_csv(api.alice, many_classes_csv(20_000))
    assert r.status_code == 201, r.get_json()
    spec = xor(dataset={"id": r.get_json()["id"]}, model={"layers": [dense(20_000, "softmax")]})
    body = problem(api.alice.post("/jobs", json=spec), 422)  # was: a worker over 5 GB, killed, retried
    msg = errors(body)["dataset"]
    assert "k x k confusion matrices 14.9 GiB" in msg and "encoded targets" in msg and "worker_memory_bytes" in msg, msg
    assert queued(api) == []


# --- the class count: max_classes at upload and at submit ---------------------------------------------------

def test_classes_over_max_classes_are_422_at_upload(limited_both):
    api = limited_both(max_classes=100)
    assert upload_csv(api.alice, many_classes_csv(100)).status_code == 201
    body = problem(upload_csv(api.alice, many_classes_csv(101)), 422)
    assert errors(body) == {"file": "101 classes is over the limit of 100 (max_classes)"}
    assert len(api.alice.get("/datasets").get_json()["items"]) == 1


def test_the_default_class_limit_refuses_twenty_thousand_classes_at_upload(api_both):
    body = problem(upload_csv(api_both.alice, many_classes_csv(20_000)), 422)
    assert errors(body) == {"file": "20,000 classes is over the limit of 10,000 (max_classes)"}


def test_classes_over_max_classes_are_422_at_submit(limited_both):
    """A dataset uploaded under a higher limit is refused once the limit is lower."""
    ident = upload_csv(limited_both(max_classes=1000).alice, many_classes_csv(300)).get_json()["id"]
    api = limited_both(max_classes=200)
    body = problem(api.alice.post("/jobs", json=xor(dataset={"id": ident},
                                                    model={"layers": [dense(300, "softmax")]})), 422)
    assert errors(body)["dataset"] == "300 classes is over the limit of 200 (max_classes)"


# --- the stored spec's size: max_layers and max_spec_bytes --------------------------------------------------

def test_layers_over_max_layers_are_422_in_one_error(limited_both):
    api = limited_both(max_layers=50)
    assert api.alice.post("/jobs", json=xor(model={"layers": [dense(1)] * 49 + [dense(1, "sigmoid")]})).status_code == 201
    body = problem(api.alice.post("/jobs", json=xor(model={"layers": [dense(1)] * 50 + [dense(1, "sigmoid")]})), 422)
    assert body["errors"] == [{"loc": "model.layers", "msg": "51 layers is over the limit of 50 (max_layers)"}]


def test_twenty_thousand_layers_are_422_before_validation(api_both):
    """Finding #21: 100,000 layers were stored normalised at 17.2 MB (max_spec_items now refuses that many values);
    20,000 is one short error, and the invalid layers are not even looked at."""
    spec = xor(model={"layers": [{"type": "bogus"}] * 20_000 + [dense(1, "sigmoid")]})
    body = problem(api_both.alice.post("/jobs", json=spec), 422)
    assert body["errors"] == [{"loc": "model.layers", "msg": "20,001 layers is over the limit of 1,000 (max_layers)"}]
    assert queued(api_both) == []


def test_a_normalised_spec_over_max_spec_bytes_is_422(limited_both):
    api = limited_both(max_spec_bytes=4096)
    job = api.alice.submit(xor())
    assert len(json.dumps(job["spec"])) <= 4096
    body = problem(api.alice.post("/jobs", json=xor(model={"layers": [dense(1)] * 20 + [dense(1, "sigmoid")]})), 422)
    [error] = body["errors"]
    assert error["loc"] == "" and "bytes of JSON as stored" in error["msg"], error
    assert "over the limit of 4,096 (max_spec_bytes)" in error["msg"]


# --- Keras thread options: bounded by the worker's --------------------------------------------------------------

def keras(**options) -> dict:
    return xor(backend="keras", backend_options=options)


def test_keras_threads_over_the_workers_are_422_naming_the_option(limited_both):
    api = limited_both(tf_intra_op_threads=4, tf_inter_op_threads=2)
    assert api.alice.post("/jobs", json=keras(intra_op_threads=4, inter_op_threads=2)).status_code == 201
    body = problem(api.alice.post("/jobs", json=keras(intra_op_threads=300, inter_op_threads=3)), 422)
    assert errors(body) == {
        "backend_options.intra_op_threads": "300 threads is over the limit of 4 (tf_intra_op_threads, the worker's own)",
        "backend_options.inter_op_threads": "3 threads is over the limit of 2 (tf_inter_op_threads, the worker's own)"}


def test_keras_threads_default_to_the_machines_cpu_count(api_both):
    cpus = os.cpu_count()
    assert api_both.alice.post("/jobs", json=keras(intra_op_threads=cpus)).status_code == 201
    body = problem(api_both.alice.post("/jobs", json=keras(intra_op_threads=300 + cpus)), 422)
    assert errors(body)["backend_options.intra_op_threads"] == (
        f"{300 + cpus} threads is over the limit of {cpus} (tf_intra_op_threads is 0: this machine's CPU count)")


# --- numbers numpy cannot draw from -------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "keras"])
def test_a_uniform_initializer_whose_range_overflows_is_422(api_both, backend):
    """Finding #26: ±1.7e308 failed the job with `internal: OverflowError` (maxval - minval is infinite)."""
    layer = {**dense(4, "tanh"), "kernel_initializer": {"name": "uniform", "minval": -1.7e308, "maxval": 1.7e308}}
    body = problem(api_both.alice.post("/jobs", json=xor(backend=backend, model={"layers": [layer, dense(1, "sigmoid")]})),
                   422)
    assert errors(body) == {"model.layers[0].kernel_initializer":
                            "maxval - minval overflows (it must be a finite number for numpy to draw from)"}
    assert queued(api_both) == []


# --- what fits still passes ---------------------------------------------------------------------------------

def test_every_example_is_accepted_at_the_default_limits(limited_both, tmp_path):
    api = limited_both(mnist_dir=str(tmp_path))  # mnist examples need the setting, not the files, at submit
    paths = sorted(EXAMPLES.glob("*.json"))
    assert len(paths) >= 15
    for path in paths:
        spec = json.loads(path.read_text())
        if "space" in spec:  # a sweep request (README "Sweeps"): accepted whole
            r = api.alice.post("/sweeps", json=spec)
            assert r.status_code == 201, (path.name, r.get_json())
            continue
        local = spec["dataset"].pop("path", None)
        if local is not None:  # as `trainyard submit` does: upload the local file, name it by id
            r = upload_csv(api.alice, (path.parent / local).read_text(), target=spec["dataset"]["target"])
            assert r.status_code == 201, (path.name, r.get_json())
            spec["dataset"]["id"] = r.get_json()["id"]
        r = api.alice.post("/jobs", json=spec)
        assert r.status_code == 201, (path.name, r.get_json())
