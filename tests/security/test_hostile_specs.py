"""Specs that try to name code or server files are refused with a 422 naming the field, on every backend, and queue
nothing: the spec can name only the layer types, activations, initializers, losses and optimizers of DESIGN §4.
"""

from __future__ import annotations

import pytest

from tests.support.api import problem, xor

DENSE_OUT = {"type": "dense", "units": 1, "activation": "sigmoid"}


def layers(*first) -> dict:
    return {"model": {"layers": [*first, DENSE_OUT]}}


HOSTILE = [
    # Layers Keras would run code for, by every spelling.
    (layers({"type": "lambda", "function": "lambda x: __import__('os').system('id')"}), "model.layers[0]"),
    (layers({"type": "Lambda"}), "model.layers[0]"),
    (layers({"type": "keras.layers.Lambda"}), "model.layers[0]"),
    (layers({"class_name": "Lambda", "config": {"function": "os.system"}}), "model.layers[0]"),
    (layers({"type": "dense", "units": 2, "activation": "relu", "module": "os"}), "model.layers[0].module"),
    (layers({"type": "dense", "units": 2, "activation": "relu", "registered_name": "Custom>Evil"}),
     "model.layers[0].registered_name"),
    # Activations, initializers, losses, optimizers, metrics given as module paths or callables.
    (layers({"type": "dense", "units": 2, "activation": "os.system"}), "model.layers[0].activation"),
    (layers({"type": "dense", "units": 2, "activation": "keras.layers.Lambda"}), "model.layers[0].activation"),
    (layers({"type": "dense", "units": 2, "activation": "__import__('os').system"}), "model.layers[0].activation"),
    (layers({"type": "dense", "units": 2, "activation": {"module": "os", "class_name": "function",
                                                         "config": "system"}}), "model.layers[0].activation"),
    (layers({"type": "dense", "units": 2, "kernel_initializer": "os.urandom"}), "model.layers[0].kernel_initializer"),
    (layers({"type": "dense", "units": 2, "kernel_initializer": {"name": "normal", "module": "os"}}),
     "model.layers[0].kernel_initializer"),
    ({"training": {"epochs": 1, "loss": "os.system"}}, "training.loss"),
    ({"training": {"epochs": 1, "optimizer": {"name": "builtins.eval"}}}, "training.optimizer"),
    ({"training": {"epochs": 1, "optimizer": "keras.optimizers.Adam"}}, "training.optimizer"),
    ({"training": {"epochs": 1, "metrics": ["os.system"]}}, "training.metrics"),
    # Escape hatches some libraries have.
    ({"custom_objects": {"Evil": "os.system"}}, "custom_objects"),
    ({"safe_mode": False}, "safe_mode"),
    ({"backend": "keras", "backend_options": {"safe_mode": False}}, "backend_options.safe_mode"),
    ({"backend": "keras", "backend_options": {"custom_objects": {"f": "os.system"}}}, "backend_options.custom_objects"),
    ({"backend": "sklearn", "backend_options": {"activation": "os.system"}}, "backend_options.activation"),
    ({"backend": "os.system"}, "backend"),
    # Server files, by path, by builtin name, by id.
    ({"dataset": {"path": "/etc/passwd"}}, "dataset.path"),
    ({"dataset": {"builtin": "xor", "path": "/etc/passwd"}}, "dataset.path"),
    ({"dataset": {"path": "../../var/trainyard.db"}}, "dataset.path"),
    ({"dataset": {"builtin": "../../../../etc/passwd"}}, "dataset"),  # "unknown builtin dataset ..."
    ({"dataset": {"id": "../../../../etc/passwd"}}, "dataset.id"),
    ({"dataset": {"builtin": "mnist", "mnist_dir": "/etc"}}, "dataset.mnist_dir"),
]


@pytest.mark.parametrize("backend", ["numpy", "sklearn", "keras"])
def test_specs_naming_code_or_server_files_are_422_naming_the_field(api, backend):
    for change, loc in HOSTILE:
        if change.get("backend", backend) not in (backend, "os.system"):
            continue  # backend-specific cases run under their own backend
        r = api.alice.post("/jobs", json=xor(**{"backend": backend, **change}))
        body = problem(r, 422)
        locs = [e["loc"] for e in body.get("errors") or []]
        assert any(l == loc or l.startswith(loc + ".") or l.startswith(loc + "[") for l in locs), (change, locs)
    assert api.alice.get("/jobs").get_json()["items"] == []  # nothing was queued


def test_a_path_dataset_is_refused_even_inside_a_normalised_resubmission(api):
    job = api.alice.submit()
    spec = job["spec"]
    spec["dataset"]["path"] = "/etc/passwd"
    body = problem(api.alice.post("/jobs", json=spec), 422)
    assert body["errors"][0]["loc"] == "dataset.path" and "never opens a file" in body["errors"][0]["msg"]
