"""One table of what each backend can express; validation and the API's /catalog both read it."""

from __future__ import annotations

from core.spec import ACTIVATIONS, LOSSES, METRICS, OPTIMIZERS, Dense, JobSpec

ALL_LAYERS = ("dense", "dropout", "batch_norm")

# backend → what it supports. Backend-specific rules that a table cannot say (e.g.
# scikit-learn's single hidden activation) live in that backend's `check`.
CAPABILITIES: dict[str, dict[str, tuple[str, ...]]] = {
    "numpy": {
        "layers": ALL_LAYERS,
        "activations": tuple(ACTIVATIONS),
        "losses": LOSSES,
        "optimizers": tuple(n for n in OPTIMIZERS if n != "lbfgs"),
        "metrics": METRICS,
        "options": ("dtype",),
    },
}


def table_errors(spec: JobSpec) -> list[dict]:
    """Errors for every layer type, activation, loss, optimizer, metric or option the backend lacks."""
    caps, name = CAPABILITIES[spec.backend], spec.backend
    errors = []
    for i, layer in enumerate(spec.model.layers):
        if layer.type not in caps["layers"]:
            errors.append({"loc": f"model.layers[{i}].type", "msg": f"backend {name!r} has no {layer.type} layer"})
        if isinstance(layer, Dense) and layer.activation.name not in caps["activations"]:
            errors.append({"loc": f"model.layers[{i}].activation",
                           "msg": f"backend {name!r} has no {layer.activation.name} activation"})
    t = spec.training
    if t.loss not in caps["losses"]:
        errors.append({"loc": "training.loss", "msg": f"backend {name!r} has no {t.loss} loss"})
    if t.optimizer.name not in caps["optimizers"]:
        errors.append({"loc": "training.optimizer", "msg": f"backend {name!r} has no {t.optimizer.name} optimizer"})
    for m in t.metrics or ():
        if m not in caps["metrics"]:
            errors.append({"loc": "training.metrics", "msg": f"backend {name!r} has no {m} metric"})
    for key in spec.backend_options:
        if key not in caps["options"]:
            valid = ", ".join(caps["options"]) or "none"
            errors.append({"loc": f"backend_options.{key}", "msg": f"unknown option for backend {name!r}; valid: {valid}"})
    return errors
