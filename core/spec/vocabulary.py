"""The spec's vocabulary: canonical names, their parameters with defaults, and the aliases accepted for them."""

from __future__ import annotations

from typing import Any

# --- the vocabulary: canonical names, their parameters with defaults, and aliases ---------

ACTIVATIONS: dict[str, dict[str, float]] = {
    "step": {}, "linear": {}, "sigmoid": {}, "tanh": {}, "relu": {}, "leaky_relu": {"alpha": 0.01}, "softmax": {},
}
INITIALIZERS: dict[str, dict[str, float]] = {
    "zeros": {}, "ones": {}, "constant": {"value": 0.0},
    "normal": {"mean": 0.0, "stddev": 0.05}, "uniform": {"minval": -0.05, "maxval": 0.05},
    "glorot_uniform": {}, "glorot_normal": {}, "he_uniform": {}, "he_normal": {},
}
LOSSES = ("mean_squared_error", "mean_absolute_error", "binary_crossentropy", "categorical_crossentropy", "perceptron")
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "rmsprop": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7},
    "perceptron": {"learning_rate": 1.0},
    "lbfgs": {},  # scikit-learn backend only (the capability table says so)
}
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1")
REGRESSION_METRICS = ("mean_squared_error", "mean_absolute_error", "r2")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
BACKENDS = ("numpy", "sklearn", "keras")

# Keras, scikit-learn and the notes' names for the same things. Lookup is case-insensitive.
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
    name = value.get("name")
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(table))}")
    unknown = sorted(set(value) - {"name"} - set(table[name]))
    if unknown:
        valid = ", ".join(table[name]) or "none"
        raise ValueError(f"unknown parameter {', '.join(map(repr, unknown))} for {kind} {name!r}; valid: {valid}")
    return {"name": name, **table[name], **{k: v for k, v in value.items() if k != "name"}}
