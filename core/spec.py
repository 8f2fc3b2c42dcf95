"""The job spec (DESIGN §4): pydantic models, name normalisation, defaults and cross-field checks.

Validation has two phases. `parse_spec(document)` checks everything that needs no
data (structure, names, parameters, legal layer/loss/optimizer combinations).
`finalize_spec(spec, info)` then checks the spec against the dataset it will train on
(output units vs classes, task vs loss and metrics) and fills the defaults that depend
on it (metrics, split seed). Both raise `SpecError` whose errors carry field paths such
as `model.layers[2].activation`.
"""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from core.datasets.catalog import BUILTINS, GATES, GENERATED, DatasetInfo
from core.errors import SpecError

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


def _named(value: Any) -> Any:
    """Accept `"name"` or `{"name": ..., params}`; return a dict with the canonical name."""
    if isinstance(value, str):
        return {"name": canonical(value)}
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return {**value, "name": canonical(value["name"])}
    return value


def _fill(value: dict, table: dict[str, dict[str, Any]], kind: str) -> dict:
    name = value.get("name")
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(table))}")
    unknown = sorted(set(value) - {"name"} - set(table[name]))
    if unknown:
        valid = ", ".join(table[name]) or "none"
        raise ValueError(f"unknown parameter {', '.join(map(repr, unknown))} for {kind} {name!r}; valid: {valid}")
    return {"name": name, **table[name], **{k: v for k, v in value.items() if k != "name"}}


class _Strict(BaseModel):
    # Strict: "units": "2" or "epochs": true are mistakes, not numbers. NaN or infinity in a
    # spec is never meaningful and would not survive a JSON round trip.
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False, strict=True)


class _Named(_Strict):
    """A named object that may also be given as its bare name; the JSON schema says both."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        return {"anyOf": [{"type": "string", "description": f"a {cls.__name__.lower()} name (parameters default)"},
                          handler(core_schema)]}


# --- named objects -----------------------------------------------------------------------

class Activation(_Named):
    """An activation: `"relu"` or `{"name": "leaky_relu", "alpha": 0.2}`; stored as a string when parameterless."""

    name: str
    alpha: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        value = _named(value)
        if isinstance(value, dict):
            value = _fill(value, ACTIVATIONS, "activation")
        return value

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, alpha: float | None) -> float | None:
        if alpha is not None and alpha < 0:
            raise ValueError("alpha must be >= 0")
        return alpha

    @model_serializer
    def _serialise(self) -> str | dict:
        return self.name if self.alpha is None else {"name": self.name, "alpha": self.alpha}


class Initializer(_Named):
    """A weight initializer with every parameter filled: `{"name": "normal", "mean": 0.0, "stddev": 0.05}`."""

    name: str
    value: float | None = None
    mean: float | None = None
    stddev: float | None = None
    minval: float | None = None
    maxval: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        value = _named(value)
        if isinstance(value, dict):
            value = _fill(value, INITIALIZERS, "initializer")
        return value

    @model_validator(mode="after")
    def _check(self) -> "Initializer":
        if self.stddev is not None and self.stddev <= 0:
            raise ValueError("stddev must be > 0")
        if self.minval is not None and self.maxval is not None and self.minval >= self.maxval:
            raise ValueError("minval must be < maxval")
        return self

    @model_serializer
    def _serialise(self) -> dict:
        return {"name": self.name, **{k: getattr(self, k) for k in INITIALIZERS[self.name]}}


class Optimizer(_Named):
    """An optimizer with every parameter filled, e.g. `{"name": "adam", "learning_rate": 0.001, ...}`."""

    name: str
    learning_rate: float | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    beta_1: float | None = None
    beta_2: float | None = None
    epsilon: float | None = None
    rho: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        value = _named(value)
        if isinstance(value, dict):
            value = _fill(value, OPTIMIZERS, "optimizer")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _remember_given(cls, value: Any, handler: Any) -> "Optimizer":
        """Keep `model_fields_set` to the parameters the user gave (a backend fills its own defaults for the rest)."""
        optimizer = handler(value)
        if isinstance(value, (str, dict)):
            given = set(value) if isinstance(value, dict) else set()
            optimizer.__pydantic_fields_set__ = ({"name"} | given) & set(cls.model_fields)
        return optimizer

    @model_validator(mode="after")
    def _check(self) -> "Optimizer":
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError("learning_rate must be > 0")
        for field in ("momentum", "beta_1", "beta_2", "rho"):
            v = getattr(self, field)
            if v is not None and not 0 <= v < 1:
                raise ValueError(f"{field} must be in [0, 1)")
        if self.epsilon is not None and not self.epsilon > 0:
            raise ValueError("epsilon must be > 0")
        return self

    @model_serializer
    def _serialise(self) -> dict:
        return {"name": self.name, **{k: getattr(self, k) for k in OPTIMIZERS[self.name]}}


class Regularizer(_Strict):
    """Per-layer weight penalties added to the loss: `l1 * sum|w| + l2 * sum w²` (Keras's `L1L2`)."""

    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)


# --- layers -------------------------------------------------------------------------------

class Dense(_Strict):
    type: Literal["dense"]
    units: int = Field(ge=1)
    activation: Activation = Field(default_factory=lambda: Activation(name="linear"))
    kernel_initializer: Initializer = Field(default_factory=lambda: Initializer(name="glorot_uniform"))
    bias_initializer: Initializer = Field(default_factory=lambda: Initializer(name="zeros"))
    kernel_regularizer: Regularizer | None = None
    use_bias: bool = True


class Dropout(_Strict):
    type: Literal["dropout"]
    rate: float = Field(ge=0, lt=1)


class BatchNorm(_Strict):
    type: Literal["batch_norm"]
    momentum: float = Field(0.99, ge=0, lt=1)
    epsilon: float = Field(0.001, gt=0)


LAYER_ALIASES = {"batchnormalization": "batch_norm", "batch_normalization": "batch_norm", "batchnorm": "batch_norm"}


def _layer_type(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        key = value["type"].strip().lower()
        return {**value, "type": LAYER_ALIASES.get(key, key)}
    return value


Layer = Annotated[Union[Dense, Dropout, BatchNorm], Field(discriminator="type")]


class ModelSpec(_Strict):
    layers: list[Layer] = Field(min_length=1)

    @field_validator("layers", mode="before")
    @classmethod
    def _types(cls, layers: Any) -> Any:
        return [_layer_type(layer) for layer in layers] if isinstance(layers, list) else layers

    @field_validator("layers")
    @classmethod
    def _output_last(cls, layers: list) -> list:
        if not isinstance(layers[-1], Dense):
            raise ValueError("the last layer is the output and must be dense")
        return layers

    @property
    def output(self) -> Dense:
        return self.layers[-1]


# --- dataset and training -------------------------------------------------------------------

class DatasetSpec(_Strict):
    """Where the data comes from and how it is split and scaled."""

    builtin: str | None = None
    id: str | None = None
    path: str | None = None
    test_split: float | None = Field(None, ge=0, lt=1)
    validation_split: float = Field(0.0, ge=0, lt=1)
    shuffle: bool = True
    seed: int | None = Field(None, ge=0, lt=2**32)
    scale: Literal["standard", "minmax"] | None = None
    target: str | None = None
    task: Literal["classification", "regression"] | None = None
    n_samples: int | None = Field(None, ge=4, le=10_000_000)
    noise: float | None = Field(None, ge=0)

    @field_validator("builtin")
    @classmethod
    def _builtin(cls, name: str | None) -> str | None:
        if name is None:
            return None
        name = name.strip().lower()
        if name not in BUILTINS:
            raise ValueError(f"unknown builtin dataset {name!r}; valid: {', '.join(sorted(BUILTINS))}")
        return name

    @model_validator(mode="after")
    def _check(self) -> "DatasetSpec":
        sources = [k for k in ("builtin", "id", "path") if getattr(self, k) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of 'builtin', 'id' or 'path'")
        if self.builtin is not None:
            if self.builtin not in GENERATED and (self.n_samples is not None or self.noise is not None):
                raise ValueError(f"n_samples and noise apply only to the generated datasets {', '.join(GENERATED)}")
            if self.builtin in GENERATED:
                self.n_samples = 200 if self.n_samples is None else self.n_samples
                self.noise = 0.1 if self.noise is None else self.noise
        if self.test_split is None:
            self.test_split = 0.0 if self.builtin in GATES else 0.25
        if self.test_split + self.validation_split >= 1:
            raise ValueError("test_split + validation_split must be < 1")
        return self


class EarlyStopping(_Strict):
    """Keras's `EarlyStopping`: stop when `monitor` has not improved by `min_delta` for `patience` epochs."""

    monitor: str | None = None
    patience: int = Field(0, ge=0)
    min_delta: float = Field(0.0, ge=0)
    restore_best_weights: bool = False


class TrainingSpec(_Strict):
    loss: str | None = None
    optimizer: Optimizer | None = None
    batch_size: int | None = Field(32, ge=1)
    epochs: int = Field(1, ge=1)
    shuffle: bool = True
    seed: int | None = Field(None, ge=0, lt=2**32)
    metrics: list[str] | None = None
    early_stopping: EarlyStopping | None = None
    checkpoint_every: int | None = Field(None, ge=1)

    @field_validator("loss")
    @classmethod
    def _loss(cls, loss: str | None) -> str | None:
        if loss is None:
            return None
        loss = canonical(loss)
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        return loss

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, metrics: list[str] | None) -> list[str] | None:
        if metrics is None:
            return None
        names = [canonical(m) for m in metrics]
        for name in names:
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRICS)}")
        return list(dict.fromkeys(names))


class JobSpec(_Strict):
    """One training job: network, data, and how to train it."""

    name: str | None = Field(None, max_length=200)
    backend: Literal["numpy", "sklearn", "keras"] = "numpy"
    device: Literal["cpu", "gpu"] = "cpu"
    dataset: DatasetSpec
    model: ModelSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    backend_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _validation_split_alias(cls, doc: Any) -> Any:
        """Keras puts `validation_split` in `fit`; accept it under `training` and keep it in `dataset`."""
        if isinstance(doc, dict) and isinstance(doc.get("training"), dict) and "validation_split" in doc["training"]:
            training = dict(doc["training"])
            split = training.pop("validation_split")
            dataset = dict(doc.get("dataset") or {})
            if "validation_split" in dataset and dataset["validation_split"] != split:
                raise ValueError("training.validation_split and dataset.validation_split disagree; give one")
            dataset["validation_split"] = split
            doc = {**doc, "training": training, "dataset": dataset}
        return doc

    @model_validator(mode="after")
    def _defaults(self) -> "JobSpec":
        t, out = self.training, self.model.output
        # Filling defaults below must not count as the user setting them: backends read
        # `model_fields_set` to replace the Keras-style defaults with their own.
        given_training, given_dataset = set(t.model_fields_set), set(self.dataset.model_fields_set)
        if t.seed is None:
            t.seed = random.SystemRandom().randrange(2**31)
        if self.dataset.seed is None:
            self.dataset.seed = t.seed
        if t.optimizer is None:
            t.optimizer = Optimizer(name="perceptron" if out.activation.name == "step" else "rmsprop")
        if t.loss is None:
            t.loss = DEFAULT_LOSS.get(out.activation.name, "mean_squared_error")
        t.__pydantic_fields_set__ = given_training
        self.dataset.__pydantic_fields_set__ = given_dataset
        return self


DEFAULT_LOSS = {"sigmoid": "binary_crossentropy", "softmax": "categorical_crossentropy", "step": "perceptron"}


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
    if t.early_stopping and t.early_stopping.monitor is None:
        t.early_stopping.monitor = "val_loss" if spec.dataset.validation_split > 0 else "loss"
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
        known = {"loss"} | set(t.metrics or default_metrics(info.task))
        if monitor.removeprefix("val_") not in known:
            errors.append({"loc": "training.early_stopping.monitor",
                           "msg": f"unknown quantity {monitor!r}; monitor loss or one of the metrics (val_ for validation)"})
    return errors


def default_metrics(task: str) -> list[str]:
    return ["accuracy"] if task == "classification" else ["mean_absolute_error"]


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
    return msg


def parse_spec(document: Any) -> JobSpec:
    """Validate a spec document's structure and names; fill the defaults that need no data."""
    try:
        spec = JobSpec.model_validate(document)
    except ValidationError as exc:
        raise SpecError([_error(e, document) for e in exc.errors()]) from None
    errors = _structural_errors(spec)
    if errors:
        raise SpecError(errors)
    return spec


def finalize_spec(spec: JobSpec, info: DatasetInfo) -> JobSpec:
    """Check `spec` against its dataset and fill the data-dependent defaults (in place; returns it)."""
    errors = _data_errors(spec, info)
    if errors:
        raise SpecError(errors)
    if spec.training.metrics is None:
        spec.training.metrics = default_metrics(info.task)
    if spec.dataset.task is None and spec.dataset.builtin is None:
        spec.dataset.task = info.task
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


def estimate_size(spec: JobSpec, n_features: int, batch_size: int | None = None) -> dict:
    """Trainable parameters and a rough peak memory (bytes, float32) for training `spec`."""
    params, state, width, fan_in = 0, 0, 0, n_features
    for layer in spec.model.layers:
        if isinstance(layer, Dense):
            params += fan_in * layer.units + (layer.units if layer.use_bias else 0)
            fan_in = layer.units
            width += layer.units
        elif isinstance(layer, BatchNorm):
            params += 2 * fan_in
            state += 2 * fan_in
            width += fan_in
    slots = {"adam": 2, "rmsprop": 2, "sgd": 1}.get(spec.training.optimizer.name, 0)
    batch = batch_size or spec.training.batch_size or 1
    activations = 3 * batch * (n_features + width)
    return {"parameters": params, "bytes": 4 * (params * (2 + slots) + state + activations)}
