"""The limits of DESIGN §7 a spec is held to at submit: each check returns errors that name the field and the setting.

Uploads use `class_count_errors` too. Messages follow one pattern: "<what> is over the limit
of <n> (<setting>)", so an operator can find the setting to change.
"""

from __future__ import annotations

import json
import os

from trainyard.core.datasets.catalog import DatasetInfo
from trainyard.core.spec import JobSpec, estimate_size, normalised
from trainyard.core.spec.memory import PARTS, split_rows
from trainyard.store.settings import Settings

# Keras backend_options that size TensorFlow's thread pools → the worker setting they may not exceed.
THREAD_SETTINGS = {"intra_op_threads": "tf_intra_op_threads", "inter_op_threads": "tf_inter_op_threads"}


def _size(n: int) -> str:
    """Bytes in words to one decimal: `25.3 GiB`, `381.5 MiB`."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def layer_count_errors(doc: dict, settings: Settings) -> list[dict]:
    """More layers than `max_layers`, counted before the spec is validated (validating 100,000 layers is the cost)."""
    model = doc.get("model")
    layers = model.get("layers") if isinstance(model, dict) else None
    if isinstance(layers, list) and len(layers) > settings.max_layers:
        return [{"loc": "model.layers",
                 "msg": f"{len(layers):,} layers is over the limit of {settings.max_layers:,} (max_layers)"}]
    return []


def spec_size_errors(spec: JobSpec, settings: Settings) -> list[dict]:
    """The normalised spec, as it would be stored and served with every job, over `max_spec_bytes`."""
    size = len(json.dumps(normalised(spec)).encode())
    if size > settings.max_spec_bytes:
        return [{"loc": "", "msg": f"the spec is {size:,} bytes of JSON as stored (every default filled in), over the "
                                   f"limit of {settings.max_spec_bytes:,} (max_spec_bytes)"}]
    return []


def class_count_errors(n_classes: int | None, settings: Settings, loc: str) -> list[dict]:
    """A classification dataset with more classes than `max_classes`."""
    if n_classes is not None and n_classes > settings.max_classes:
        return [{"loc": loc, "msg": f"{n_classes:,} classes is over the limit of {settings.max_classes:,} (max_classes)"}]
    return []


def memory_errors(spec: JobSpec, info: DatasetInfo, estimate: dict, settings: Settings) -> list[dict]:
    """The estimated training memory (`estimate_size`) over `worker_memory_bytes`, at the field of its largest part."""
    total, limit = estimate["bytes"], settings.worker_memory_bytes
    if total <= limit:
        return []
    parts = sorted(estimate["parts"].items(), key=lambda item: -item[1])
    largest = parts[0][0]
    _, loc, advice = PARTS[largest]
    listed = ", ".join(f"{PARTS[name][0]} {_size(n)}" for name, n in parts if n)
    if largest == "activations" and spec.training.batch_size is None:
        rows = split_rows(spec, info.n_samples or 0)[0]
        advice = f"batch_size null trains on all {rows:,} training rows at once; give a batch_size"
    return [{"loc": loc, "msg": f"training needs about {_size(total)} of memory ({listed}), over the limit of "
                                f"{limit:,} bytes (worker_memory_bytes): {advice}"}]


def thread_errors(spec: JobSpec, settings: Settings) -> list[dict]:
    """Keras thread counts above the worker's own (its setting, or this machine's CPU count where that is 0)."""
    if spec.backend != "keras":
        return []
    errors = []
    for option, setting in THREAD_SETTINGS.items():
        value = spec.backend_options.get(option, 0)
        bound = getattr(settings, setting) or os.cpu_count() or 1
        why = f"{setting}, the worker's own" if getattr(settings, setting) else f"{setting} is 0: this machine's CPU count"
        if isinstance(value, int) and value > bound:
            errors.append({"loc": f"backend_options.{option}",
                           "msg": f"{value:,} threads is over the limit of {bound:,} ({why})"})
    return errors


def spec_limit_errors(spec: JobSpec, info: DatasetInfo | None, settings: Settings) -> list[dict]:
    """Every limit a validated spec is held to; those that need the dataset's facts only when they are known."""
    errors = spec_size_errors(spec, settings) + thread_errors(spec, settings)
    if spec.training.epochs > settings.max_epochs:
        errors.append({"loc": "training.epochs",
                       "msg": f"{spec.training.epochs} epochs is over the limit of {settings.max_epochs} (max_epochs)"})
    if info is None:
        return errors
    estimate = estimate_size(spec, info)
    params = estimate["parameters"]
    if params > settings.max_parameters:
        errors.append({"loc": "model.layers", "msg": f"{params:,} trainable parameters is over the limit of "
                                                     f"{settings.max_parameters:,} (max_parameters)"})
    n = info.n_samples or 0
    if n * info.n_features > settings.max_samples_x_features:
        errors.append({"loc": "dataset", "msg": f"{n:,} samples x {info.n_features} features is over the limit of "
                                                f"{settings.max_samples_x_features:,} (max_samples_x_features)"})
    errors += class_count_errors(info.n_classes if info.task == "classification" else None, settings, "dataset")
    return errors + memory_errors(spec, info, estimate, settings)
