"""One table of what each backend can express; every backend's `check` and the API's /catalog read it.

Every name of the spec's vocabulary is, for each backend, either supported or explained in its
`why_not`; `tests/core/test_vocabulary.py` holds the table to that and to the translation tables.
The backends' defaults are not here: they are in core/spec/defaults.py (re-exported for /catalog).
"""

from __future__ import annotations

from typing import Any

from trainyard.core.spec import ACTIVATIONS, INITIALIZERS, LOSSES, METRICS, OPTIMIZERS, Dense, JobSpec
from trainyard.core.spec.defaults import KERAS_DEFAULTS, NUMPY_DEFAULTS, SKLEARN_DEFAULTS, SKLEARN_SOLVER_OPTIONS

__all__ = ["CAPABILITIES", "KERAS_DEFAULTS", "SKLEARN_DEFAULTS", "SKLEARN_SOLVER_OPTIONS", "catalog", "table_errors"]

ALL_LAYERS = ("dense", "dropout", "batch_norm")

# Why a backend lacks something, appended to the refusal so users know what to do instead.
_STEP_WHY = "the step function has no gradient; train step units with backend 'numpy' and optimizer 'perceptron'"
_PERCEPTRON_WHY = "the perceptron rule exists only in backend 'numpy'"

# backend → what it supports. Rules a table cannot say (scikit-learn's single hidden
# activation, its fixed output layer) live in that backend's `check`; `rules` states them
# in words for /catalog.
CAPABILITIES: dict[str, dict[str, Any]] = {
    "numpy": {
        "layers": ALL_LAYERS,
        "activations": tuple(ACTIVATIONS),
        "hidden_activations": tuple(ACTIVATIONS),
        "output_activations": tuple(ACTIVATIONS),
        "initializers": tuple(INITIALIZERS),
        "losses": LOSSES,
        "optimizers": tuple(n for n in OPTIMIZERS if n != "lbfgs"),
        "metrics": METRICS,
        "options": tuple(NUMPY_DEFAULTS["options"]),
        "devices": ("cpu",),
        "why_not": {"lbfgs": "optimizer 'lbfgs' exists only for backend 'sklearn'",
                    "gpu": "the numpy engine runs on the CPU; use backend 'keras' for a GPU"},
        "rules": (),
    },
    "sklearn": {
        "layers": ("dense",),
        "activations": ("linear", "sigmoid", "tanh", "relu", "softmax"),
        "hidden_activations": ("linear", "sigmoid", "tanh", "relu"),
        "output_activations": ("linear", "sigmoid", "softmax"),
        "initializers": (),
        "losses": ("mean_squared_error", "binary_crossentropy", "categorical_crossentropy"),
        "optimizers": ("sgd", "adam", "lbfgs"),
        "metrics": METRICS,
        "options": tuple(SKLEARN_DEFAULTS["options"]),
        "devices": ("cpu",),
        "why_not": {
            "gpu": "scikit-learn trains on the CPU only; use backend 'keras' for a GPU",
            "dropout": "MLPClassifier has no dropout", "batch_norm": "MLPClassifier has no batch normalisation",
            "step": _STEP_WHY, "perceptron": _PERCEPTRON_WHY, "leaky_relu": "MLPClassifier has no leaky ReLU",
            "rmsprop": "MLPClassifier's solvers are sgd, adam and lbfgs",
            "mean_absolute_error": "MLPRegressor minimises squared error only",
            **{name: "scikit-learn draws its own initial weights (Glorot-style uniform for weights and biases)"
               for name in INITIALIZERS},
        },
        "rules": (
            "all hidden dense layers share one activation (MLP's `activation`)",
            "the output layer is scikit-learn's: 1 sigmoid unit with binary_crossentropy for 2 classes, "
            "k softmax units with categorical_crossentropy for k > 2 classes, linear units with "
            "mean_squared_error (which scikit-learn halves) for regression",
            "initial weights are scikit-learn's own (Glorot-style uniform for weights and biases): leave "
            "kernel_initializer and bias_initializer out or at the spec's defaults",
            "no per-layer penalties: give backend_options.alpha (an L2 penalty on all weights)",
            "training.early_stopping: patience → n_iter_no_change, min_delta → tol; monitor 'loss' is "
            "scikit-learn's own training-loss stop, a val_ monitor uses dataset.validation_split",
            "history rows have the epoch's loss and, with a validation split, val_loss and val_<metric>",
            "lbfgs reports one history row (it has no epochs) and ignores batch_size",
            "training happens in one fit call: no checkpoint_every",
            "early_stopping.restore_best_weights with a val_ monitor keeps the best epoch's weights even when "
            "training runs to its last epoch (scikit-learn's own rule; numpy and keras restore only on a stop)",
        ),
    },
    "keras": {
        "layers": ALL_LAYERS,
        "activations": tuple(a for a in ACTIVATIONS if a != "step"),
        "hidden_activations": tuple(a for a in ACTIVATIONS if a != "step"),
        "output_activations": tuple(a for a in ACTIVATIONS if a != "step"),
        "initializers": tuple(INITIALIZERS),
        "losses": tuple(name for name in LOSSES if name != "perceptron"),
        "optimizers": ("sgd", "adam", "rmsprop"),
        "metrics": METRICS,
        "options": tuple(KERAS_DEFAULTS["options"]),
        "devices": ("cpu", "gpu"),
        "why_not": {"step": _STEP_WHY, "perceptron": _PERCEPTRON_WHY,
                    "lbfgs": "optimizer 'lbfgs' exists only for backend 'sklearn'"},
        "rules": (
            "batch_size null trains on the whole training split in one batch",
            "precision, recall and f1 in the history are computed on the training split at each epoch's end",
            "a job resumed from a checkpoint continues its weights and optimizer state, but restarts "
            "early-stopping patience and shuffles its batches differently from an uninterrupted run",
            "backend_options.intra_op_threads and inter_op_threads size TensorFlow's thread pools only where a "
            "process trains one job (trainyard run); on the service every job runs with its worker's own "
            "(tf_intra_op_threads, tf_inter_op_threads: TensorFlow cannot resize its pools), and values above "
            "those are refused",
        ),
    },
}


def _refusal(backend: str, kind: str, name: str, valid: tuple[str, ...]) -> str:
    why = CAPABILITIES[backend]["why_not"].get(name)
    tail = why if why else f"valid: {', '.join(valid)}" if valid else "none can be chosen"
    return f"backend {backend!r} has no {name} {kind}; {tail}"


# Dense's own initializers (built once: building them for every layer of every spec checked cost ~40 us each)
_SPEC_INITIALIZERS = {field: Dense.model_fields[field].default_factory() for field in ("kernel_initializer",
                                                                                       "bias_initializer")}


def _layer_errors(spec: JobSpec, caps: dict, name: str) -> list[dict]:
    errors = []
    last = len(spec.model.layers) - 1
    for i, layer in enumerate(spec.model.layers):
        if layer.type not in caps["layers"]:
            errors.append({"loc": f"model.layers[{i}].type", "msg": _refusal(name, "layer", layer.type, caps["layers"])})
        if not isinstance(layer, Dense):
            continue
        valid = caps["output_activations"] if i == last else caps["hidden_activations"]
        if layer.activation.name not in valid:
            kind = "output activation" if i == last else "hidden activation"
            errors.append({"loc": f"model.layers[{i}].activation", "msg": _refusal(name, kind, layer.activation.name, valid)})
        for field in ("kernel_initializer", "bias_initializer"):
            # Only initializers the user chose: a backend with its own scheme keeps it when none is given, and
            # the spec's default given or written out (as in a normalised spec) still means "none chosen".
            init = getattr(layer, field)
            if init.name not in caps["initializers"] and init != _SPEC_INITIALIZERS[field]:
                msg = _refusal(name, "initializer", init.name, caps["initializers"])
                if not caps["initializers"]:
                    msg = f"backend {name!r} draws its own initial weights; leave {field} out"
                errors.append({"loc": f"model.layers[{i}].{field}", "msg": msg})
    return errors


def table_errors(spec: JobSpec) -> list[dict]:
    """Errors for every layer type, activation, initializer, loss, optimizer, metric, option or device the backend lacks."""
    name = spec.backend
    caps = CAPABILITIES[name]
    errors = _layer_errors(spec, caps, name)
    if spec.device not in caps["devices"]:
        errors.append({"loc": "device", "msg": _refusal(name, "device", spec.device, caps["devices"])})
    t = spec.training
    if t.loss not in caps["losses"]:
        errors.append({"loc": "training.loss", "msg": _refusal(name, "loss", t.loss, caps["losses"])})
    if t.optimizer.name not in caps["optimizers"]:
        errors.append({"loc": "training.optimizer", "msg": _refusal(name, "optimizer", t.optimizer.name, caps["optimizers"])})
    for m in t.metrics or ():
        if m not in caps["metrics"]:
            errors.append({"loc": "training.metrics", "msg": _refusal(name, "metric", m, caps["metrics"])})
    for key in spec.backend_options:
        if key not in caps["options"]:
            valid = ", ".join(caps["options"]) or "none"
            errors.append({"loc": f"backend_options.{key}", "msg": f"unknown option for backend {name!r}; valid: {valid}"})
    return errors


def catalog() -> dict[str, Any]:
    """The capability table as plain JSON for /catalog, with each backend's own defaults."""
    # numpy's one default (dtype float32, NUMPY_DEFAULTS) has never been listed here; /catalog's clients see {}
    defaults = {"sklearn": SKLEARN_DEFAULTS, "keras": KERAS_DEFAULTS}
    return {name: {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in caps.items()},
                   "defaults": defaults.get(name, {})}
            for name, caps in CAPABILITIES.items()}
