"""The spec's entry points and the checks across fields: structure first, then against the dataset.

The checks here only check; every default is filled by `core/spec/defaults.py`, whose steps the
entry points run in order between them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from trainyard.core.datasets.catalog import BUILTINS, GENERATED, DatasetInfo
from trainyard.core.errors import SpecError
from trainyard.core.spec import defaults
from trainyard.core.spec.given import given_paths
from trainyard.core.spec.models import Dense, JobSpec
from trainyard.core.spec.vocabulary import CLASSIFICATION_METRICS

# --- checks across fields ---------------------------------------------------------------------

def _structural_errors(spec: JobSpec) -> list[dict]:
    """Legal combinations of layers, output activation, loss and optimizer (DESIGN §4)."""
    errors = []
    layers, t = spec.model.layers, spec.training
    out_i, out = len(layers) - 1, spec.model.output
    out_loc = f"model.layers[{out_i}].activation"
    perceptron = t.optimizer.name == "perceptron"
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense) and layer.activation.name == "step" and not perceptron:
            errors.append({"loc": f"model.layers[{i}].activation",
                           "msg": "the step activation has no gradient; train it with optimizer 'perceptron'"})
    if perceptron and (len(layers) != 1 or out.activation.name != "step"):
        errors.append({"loc": "training.optimizer",
                       "msg": "the perceptron rule trains exactly one dense layer of step units"})
    if (t.loss == "perceptron") != perceptron:
        errors.append({"loc": "training.loss",
                       "msg": "loss 'perceptron' goes with optimizer 'perceptron' (and only with it)"})
    if t.loss == "binary_crossentropy" and (out.activation.name != "sigmoid" or out.units != 1):
        errors.append({"loc": out_loc, "msg": "binary_crossentropy needs an output layer of 1 sigmoid unit"})
    if t.loss == "categorical_crossentropy" and out.activation.name != "softmax":
        errors.append({"loc": out_loc, "msg": "categorical_crossentropy needs a softmax output layer"})
    if out.activation.name == "softmax" and out.units < 2:
        errors.append({"loc": f"model.layers[{out_i}].units", "msg": "a softmax output needs at least 2 units"})
    if t.optimizer.name == "lbfgs" and spec.backend != "sklearn":
        errors.append({"loc": "training.optimizer", "msg": "optimizer 'lbfgs' exists only for backend 'sklearn'"})
    es = t.early_stopping
    if es and es.monitor.startswith("val_") and spec.dataset.validation_split == 0:
        errors.append({"loc": "training.early_stopping.monitor",
                       "msg": f"monitoring {es.monitor!r} needs dataset.validation_split > 0"})
    return errors


def _data_errors(spec: JobSpec, info: DatasetInfo) -> list[dict]:
    """Checks that need the dataset: output units vs classes, task vs loss and metrics."""
    errors = []
    out_i, out, t = len(spec.model.layers) - 1, spec.model.output, spec.training
    units_loc = f"model.layers[{out_i}].units"
    if info.task == "classification":
        k = info.n_classes or 0
        if out.units == 1 and k != 2:
            errors.append({"loc": units_loc, "msg": f"1 output unit encodes 2 classes, the dataset has {k}; use {k} units"})
        elif out.units > 1 and out.units != k:
            errors.append({"loc": units_loc, "msg": f"{out.units} output units but the dataset has {k} classes"})
        bad = [m for m in t.metrics or () if m not in CLASSIFICATION_METRICS]
    else:
        if t.loss in ("binary_crossentropy", "categorical_crossentropy", "perceptron"):
            errors.append({"loc": "training.loss", "msg": f"{t.loss} needs a classification dataset; this one is regression"})
        if out.units != info.n_targets:
            errors.append({"loc": units_loc, "msg": f"{out.units} output units but the dataset has {info.n_targets} targets"})
        bad = [m for m in t.metrics or () if m in CLASSIFICATION_METRICS]
    for m in bad:
        errors.append({"loc": "training.metrics", "msg": f"metric {m!r} does not apply to a {info.task} dataset"})
    monitor = t.early_stopping.monitor if t.early_stopping else None
    if monitor:
        known = {"loss"} | set(t.metrics or ())
        if monitor.removeprefix("val_") not in known:
            errors.append({"loc": "training.early_stopping.monitor",
                           "msg": f"unknown quantity {monitor!r}; monitor loss or one of the metrics (val_ for validation)"})
    return errors


# --- entry points ---------------------------------------------------------------------------------

_TAGS = {"dense", "dropout", "batch_norm"}


def _loc(loc: tuple, doc: Any) -> str:
    """Format a pydantic location as `model.layers[2].activation`, skipping union tags."""
    parts, node = [], doc
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
            node = node[item] if isinstance(node, list) and item < len(node) else None
            continue
        if item in _TAGS and not (isinstance(node, dict) and item in node):
            continue
        parts.append(f".{item}" if parts else str(item))
        node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def _error(error: dict, doc: Any) -> dict:
    loc = _loc(error["loc"], doc)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc += ".type"  # the discriminator is the field that is wrong
    return {"loc": loc, "msg": _message(error)}


def _message(error: dict) -> str:
    msg = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        msg = "unknown field"
    elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):  # the layer's `type`, worded as elsewhere
        ctx = error.get("ctx") or {}
        valid = ", ".join(sorted(_TAGS))
        if error["type"] == "union_tag_invalid":
            msg = f"unknown layer type {ctx.get('tag')!r}; valid: {valid}"
        else:
            msg = f"a layer needs a type; valid: {valid}"
    return msg


def _model(document: Any) -> JobSpec:
    """The document as pydantic parses it (step 0 of the defaults), or SpecError naming each field."""
    try:
        return JobSpec.model_validate(document)
    except ValidationError as exc:
        raise SpecError([_error(e, document) for e in exc.errors()]) from None


def parse(document: Any) -> tuple[JobSpec, frozenset[str]]:
    """`parse_spec`, and the field paths the document gave (`given.given_paths`)."""
    spec = _model(document)
    given = given_paths(document)
    defaults.generic(spec, given)
    errors = _structural_errors(spec)
    if errors:
        raise SpecError(errors)
    defaults.for_backend(spec, given)
    return spec, given


def parse_spec(document: Any) -> JobSpec:
    """Validate a spec document's structure and names; fill the defaults that need no data (generic, then the
    backend's own: core/spec/defaults.py). The backend's check and the data come after (core.validate)."""
    return parse(document)[0]


def finalize_spec(spec: JobSpec, info: DatasetInfo) -> JobSpec:
    """Fill the data-dependent defaults (step 3 of core/spec/defaults.py) and check `spec` against its dataset
    (in place; returns it). A finished spec gets nothing filled: the worker calls it again once the data is
    loaded (core.job.train_job)."""
    defaults.data(spec, info)
    errors = _data_errors(spec, info)
    if errors:
        raise SpecError(errors)
    return spec


def read_spec(document: Any) -> JobSpec:
    """A stored, normalised spec read back (as the worker does): parsed, checked to be finished, nothing filled.

    It was validated once, at submit; reading it again must not change it, so no default step runs here, and a
    stored spec that lacks what every finished spec has is refused rather than filled.
    """
    spec = _model(document)
    t = spec.training
    finished = {"training.seed": t.seed, "training.optimizer": t.optimizer, "training.loss": t.loss,
                "dataset.seed": spec.dataset.seed}
    if t.early_stopping is not None:
        finished["training.early_stopping.monitor"] = t.early_stopping.monitor
    missing = [{"loc": loc, "msg": "missing from a normalised spec"} for loc, value in finished.items() if value is None]
    if missing:
        raise SpecError(missing)
    return spec


def builtin_info(spec: JobSpec) -> DatasetInfo | None:
    """The dataset facts known without loading data (builtins only)."""
    name = spec.dataset.builtin
    if name is None:
        return None
    info = BUILTINS[name]
    if name in GENERATED:
        info = DatasetInfo(info.task, info.n_features, info.n_classes, spec.dataset.n_samples)
    return info


def normalised(spec: JobSpec) -> dict:
    """The spec as stored and reported: plain JSON with every default filled in."""
    return spec.model_dump(mode="json")


def json_schema() -> dict:
    """The JSON schema of a spec document, for the API docs."""
    return JobSpec.model_json_schema(mode="validation")

