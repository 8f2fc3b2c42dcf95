"""GET /catalog: what a spec may name, read from the capability table, the spec vocabulary and the builtin datasets."""

from __future__ import annotations

import dataclasses

from flask import Blueprint
from pydantic_core import PydanticUndefined

from trainyard.core import spec as vocab
from trainyard.core import capabilities
from trainyard.core.datasets.catalog import BUILTINS, GENERATED
from trainyard.core.spec import defaults

bp = Blueprint("catalog", __name__)


def _layer_params(model: type) -> dict:
    params = {}
    for name, field in model.model_fields.items():
        if name == "type":
            continue
        if field.default_factory is not None:
            default = field.default_factory()
            default = default.model_dump(mode="json") if hasattr(default, "model_dump") else default
        else:
            default = None if field.default is PydanticUndefined else field.default
        params[name] = {"required": field.is_required(), "default": default}
    return params


def _datasets() -> dict:
    out = {}
    for name, info in BUILTINS.items():
        entry = {k: v for k, v in dataclasses.asdict(info).items()}
        entry["options"] = list(defaults.GENERATED_DEFAULTS) if name in GENERATED else []
        entry["default_test_split"] = defaults.default_test_split(name)
        out[name] = entry
    return out


def build_catalog() -> dict:
    """The catalog document (no I/O; the same for every caller)."""
    return {
        "backends": capabilities.catalog(),  # names, the reason for each refusal, and each backend's defaults
        "datasets": _datasets(),
        "layers": {"dense": _layer_params(vocab.Dense), "dropout": _layer_params(vocab.Dropout),
                   "batch_norm": _layer_params(vocab.BatchNorm)},
        "activations": {name: dict(params) for name, params in vocab.ACTIVATIONS.items()},
        "initializers": {name: dict(params) for name, params in vocab.INITIALIZERS.items()},
        "losses": list(vocab.LOSSES),
        "optimizers": {name: dict(params) for name, params in vocab.OPTIMIZERS.items()},
        "metrics": {"classification": list(vocab.CLASSIFICATION_METRICS), "regression": list(vocab.REGRESSION_METRICS)},
        "default_losses": dict(vocab.DEFAULT_LOSS),
        "aliases": dict(vocab.ALIASES),
        "upload_formats": ["csv", "npz", "idx"],
        "devices": ["cpu", "gpu"],
    }


@bp.get("/catalog")
def get_catalog():
    """Builtin datasets, backends, layer types, activations, losses, optimizers, initializers, metrics."""
    return build_catalog()
