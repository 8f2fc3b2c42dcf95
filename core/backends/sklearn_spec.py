"""How a job spec maps onto scikit-learn's MLPClassifier / MLPRegressor: its refusals and its parameters.

scikit-learn's defaults (epochs, batch size, solver …) are filled before `check` runs, by step 2 of
core/spec/defaults.py; `check` only checks.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, Callable

from trainyard.core.capabilities import CAPABILITIES, table_errors
from trainyard.core.spec import Dense, JobSpec, builtin_info
from trainyard.core.spec.defaults import SKLEARN_EARLY_STOPPING, SKLEARN_SOLVER_OPTIONS, default_loss

# trainyard's canonical activation names → scikit-learn's (hidden layers; tests/core/test_vocabulary.py holds it to
# the capability table)
SKLEARN_ACTIVATION = {"linear": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}
# output activation → the only loss scikit-learn trains it with: the spec's default loss for it
OUTPUT_LOSS = {name: default_loss(name) for name in CAPABILITIES["sklearn"]["output_activations"]}


def _number(kind: type, low: float, strict: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"must be {'an integer' if kind is Integral else 'a number'}"
        if value < low or (strict and value == low):
            return f"must be {'>' if strict else '>='} {low}"
        return None
    return check


def _choice(*values: str) -> Callable[[Any], str | None]:
    return lambda value: None if value in values else f"must be one of {', '.join(values)}"


OPTION_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "alpha": _number(Real, 0), "tol": _number(Real, 0), "n_iter_no_change": _number(Integral, 1),
    "learning_rate_schedule": _choice("constant", "invscaling", "adaptive"), "power_t": _number(Real, 0),
    "max_fun": _number(Integral, 1), "dtype": _choice("float32", "float64"),
}


def _option_errors(spec: JobSpec) -> list[dict]:
    """The solver's backend_options, and early_stopping's agreement with the options that say the same thing."""
    errors, options, es = [], spec.backend_options, spec.training.early_stopping
    if es is not None:
        for field, option in SKLEARN_EARLY_STOPPING:
            # step 2 of the defaults filled whichever side was not given from the other: a difference was given
            if option in options and options[option] != getattr(es, field):
                errors.append({"loc": f"backend_options.{option}",
                               "msg": f"disagrees with training.early_stopping.{field}; give one of them"})
        # (a patience taken from an invalid n_iter_no_change is that option's error, reported below)
        if isinstance(es.patience, int) and es.patience < 1:
            errors.append({"loc": "training.early_stopping.patience",
                           "msg": "scikit-learn needs patience (n_iter_no_change) >= 1"})
    # an optimizer scikit-learn lacks is refused by the table; don't also refuse every option for it
    allowed = SKLEARN_SOLVER_OPTIONS.get(spec.training.optimizer.name, tuple(OPTION_CHECKS))
    for key, value in options.items():
        problem = OPTION_CHECKS[key](value) if key in OPTION_CHECKS else None
        if problem:
            errors.append({"loc": f"backend_options.{key}", "msg": problem})
        elif key in OPTION_CHECKS and key not in allowed:
            errors.append({"loc": f"backend_options.{key}",
                           "msg": f"does not apply to optimizer {spec.training.optimizer.name!r}"})
    return errors


def _layer_errors(spec: JobSpec) -> list[dict]:
    """One shared hidden activation, no per-layer penalties, biases everywhere, scikit-learn's output layer."""
    errors, layers = [], spec.model.layers
    last = len(layers) - 1
    hidden = [(i, layer) for i, layer in enumerate(layers[:-1]) if isinstance(layer, Dense)]
    if hidden:
        first_i, first = hidden[0]
        for i, layer in hidden[1:]:
            if layer.activation.name != first.activation.name:
                errors.append({"loc": f"model.layers[{i}].activation",
                               "msg": f"scikit-learn uses one activation for all hidden layers; "
                                      f"model.layers[{first_i}] has {first.activation.name}, this one {layer.activation.name}"})
    for i, layer in enumerate(layers):
        if not isinstance(layer, Dense):
            continue
        if layer.kernel_regularizer is not None:
            errors.append({"loc": f"model.layers[{i}].kernel_regularizer",
                           "msg": "scikit-learn has no per-layer penalties; give backend_options.alpha "
                                  "(an L2 penalty on all weights) instead"})
        if not layer.use_bias:
            errors.append({"loc": f"model.layers[{i}].use_bias", "msg": "scikit-learn's layers always have biases"})
    out = spec.model.output
    if out.activation.name == "softmax" and out.units == 2:
        errors.append({"loc": f"model.layers[{last}].activation",
                       "msg": "for 2 classes scikit-learn's output is 1 sigmoid unit (logistic), not 2 softmax units"})
    expected = OUTPUT_LOSS.get(out.activation.name)
    if expected and spec.training.loss != expected:
        errors.append({"loc": "training.loss",
                       "msg": f"scikit-learn trains a {out.activation.name} output with {expected} only"})
    return errors


def _data_errors(spec: JobSpec) -> list[dict]:
    """What can be told from a builtin dataset's description before loading it."""
    info = builtin_info(spec)
    if info is None:
        return []
    return task_errors(spec, info.task)


def task_errors(spec: JobSpec, task: str) -> list[dict]:
    """scikit-learn's output layer follows the task: a classifier never has a linear output, a regressor always."""
    last = len(spec.model.layers) - 1
    linear = spec.model.output.activation.name == "linear"
    if task == "classification" and linear:
        return [{"loc": f"model.layers[{last}].activation",
                 "msg": "scikit-learn classifies with a sigmoid (2 classes) or softmax output, not a linear one"}]
    if task == "regression" and not linear:
        return [{"loc": f"model.layers[{last}].activation", "msg": "scikit-learn's regressor has a linear output"}]
    return []


def check(spec: JobSpec) -> list[dict]:
    """What scikit-learn cannot express in `spec` (its defaults already filled: core/spec/defaults.py)."""
    errors = _option_errors(spec)
    errors += table_errors(spec)
    errors += _layer_errors(spec)
    if spec.training.checkpoint_every is not None:
        errors.append({"loc": "training.checkpoint_every",
                       "msg": "scikit-learn trains in one fit call and cannot resume from a checkpoint"})
    return errors + _data_errors(spec)


def estimator_params(spec: JobSpec, n_train: int) -> dict[str, Any]:
    """Keyword arguments for MLPClassifier / MLPRegressor (only those that matter for the solver)."""
    t, opt, o = spec.training, spec.training.optimizer, spec.backend_options
    hidden = [layer for layer in spec.model.layers[:-1] if isinstance(layer, Dense)]
    params: dict[str, Any] = {
        "hidden_layer_sizes": tuple(layer.units for layer in hidden),
        # with no hidden layer the activation is unused; scikit-learn's default keeps its weight init
        "activation": SKLEARN_ACTIVATION[hidden[0].activation.name] if hidden else "relu",
        "solver": opt.name, "alpha": o["alpha"], "max_iter": t.epochs, "random_state": t.seed,
        "tol": o["tol"], "shuffle": t.shuffle, "early_stopping": False,
    }
    if opt.name == "lbfgs":
        return {**params, "max_fun": o["max_fun"]}
    # scikit-learn warns when the batch is larger than the data; the spec says clip silently
    batch = n_train if t.batch_size is None else min(t.batch_size, n_train)
    params.update(batch_size=max(batch, 1), learning_rate_init=opt.learning_rate, n_iter_no_change=o["n_iter_no_change"])
    if opt.name == "sgd":
        return {**params, "momentum": opt.momentum, "nesterovs_momentum": opt.nesterov,
                "learning_rate": o["learning_rate_schedule"], "power_t": o["power_t"]}
    return {**params, "beta_1": opt.beta_1, "beta_2": opt.beta_2, "epsilon": opt.epsilon}
