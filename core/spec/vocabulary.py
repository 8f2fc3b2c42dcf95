"""The spec's vocabulary: canonical names, their parameters with defaults, and the aliases accepted for them.

Each name is listed once here, in the order /catalog and error messages show it. A name's
parameters and their defaults are not written here: they are read from the signature of the
engine class registered under that name (`trainyard.core.activations`, `trainyard.core.initializers`,
`trainyard.core.optimizers`), as Keras keeps one default per argument in the signature. A name the
engine lacks (scikit-learn's `lbfgs`) declares its parameters in `ENGINE_LACKS`.
`tests/core/test_vocabulary.py` holds every name against every backend and translation table.
"""

from __future__ import annotations

import inspect
from typing import Any

from trainyard.core import activations as _activations
from trainyard.core import initializers as _initializers
from trainyard.core import metrics as _metrics
from trainyard.core import optimizers as _optimizers

# --- the names, in catalog order ------------------------------------------------------------

ACTIVATION_NAMES = ("step", "linear", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")
INITIALIZER_NAMES = ("zeros", "ones", "constant", "normal", "uniform", "glorot_uniform", "glorot_normal", "he_uniform",
                     "he_normal")
LOSSES = ("mean_squared_error", "mean_absolute_error", "binary_crossentropy", "categorical_crossentropy", "perceptron")
OPTIMIZER_NAMES = ("sgd", "adam", "rmsprop", "perceptron", "lbfgs")
# Names no engine class stands for, with their parameters: the capability table says which backend has them.
ENGINE_LACKS: dict[str, dict[str, Any]] = {"lbfgs": {}}  # scikit-learn backend only

CLASSIFICATION_METRICS: tuple[str, ...] = _metrics.CLASSIFICATION
REGRESSION_METRICS: tuple[str, ...] = _metrics.REGRESSION
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
BACKENDS = ("numpy", "sklearn", "keras")


# --- parameters and their defaults, from the engine's signatures ----------------------------

def signature_defaults(cls: type) -> dict[str, Any]:
    """The keyword parameters of `cls(...)` and their defaults, in signature order."""
    params = inspect.signature(cls).parameters.values()
    return {p.name: p.default for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty}


def engine_parameters(registry: Any, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`name → parameter defaults` for `names`: from the engine class registered under each name, else from
    `ENGINE_LACKS`. A name in neither gets none; the vocabulary test then says what is missing."""
    engine = set(registry.names())
    return {name: signature_defaults(registry.get(name)) if name in engine else dict(ENGINE_LACKS.get(name, {}))
            for name in names}


ACTIVATIONS: dict[str, dict[str, Any]] = engine_parameters(_activations.ACTIVATIONS, ACTIVATION_NAMES)
INITIALIZERS: dict[str, dict[str, Any]] = engine_parameters(_initializers.INITIALIZERS, INITIALIZER_NAMES)
OPTIMIZERS: dict[str, dict[str, Any]] = engine_parameters(_optimizers.OPTIMIZERS, OPTIMIZER_NAMES)

# Keras, scikit-learn and the notes' names for the same things: the one alias table (the spec canonicalises every
# name before anything else reads it). Lookup is case-insensitive.
ALIASES: dict[str, str] = {
    "heaviside": "step", "identity": "linear", "logistic": "sigmoid", "leakyrelu": "leaky_relu",
    "zero": "zeros", "one": "ones", "random_normal": "normal", "randomnormal": "normal",
    "random_uniform": "uniform", "randomuniform": "uniform", "glorotuniform": "glorot_uniform",
    "glorotnormal": "glorot_normal", "xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal",
    "heuniform": "he_uniform", "henormal": "he_normal",
    "mse": "mean_squared_error", "squared_error": "mean_squared_error", "meansquarederror": "mean_squared_error",
    "mae": "mean_absolute_error", "absolute_error": "mean_absolute_error", "meanabsoluteerror": "mean_absolute_error",
    "binarycrossentropy": "binary_crossentropy", "bce": "binary_crossentropy",
    "categoricalcrossentropy": "categorical_crossentropy", "cce": "categorical_crossentropy",
    "acc": "accuracy", "f1_score": "f1", "r2_score": "r2",
    "gd": "sgd", "gradient_descent": "sgd",
}


def canonical(name: str) -> str:
    """Lower-case a name and map Keras / scikit-learn aliases to trainyard's canonical name."""
    key = name.strip().lower()
    return ALIASES.get(key, key)


def named(value: Any) -> Any:
    """Accept `"name"` or `{"name": ..., params}`; return a dict with the canonical name."""
    if isinstance(value, str):
        return {"name": canonical(value)}
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return {**value, "name": canonical(value["name"])}
    return value


def fill(value: dict, table: dict[str, dict[str, Any]], kind: str) -> dict:
    """`value` with every parameter of its name filled from `table` (the engine's signature defaults)."""
    name = value.get("name")
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(table))}")
    unknown = sorted(set(value) - {"name"} - set(table[name]))
    if unknown:
        valid = ", ".join(table[name]) or "none"
        raise ValueError(f"unknown parameter {', '.join(map(repr, unknown))} for {kind} {name!r}; valid: {valid}")
    return {"name": name, **table[name], **{k: v for k, v in value.items() if k != "name"}}
