"""The spec's models: layers, the model, the dataset, training, and the whole job."""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from core.datasets.catalog import BUILTINS, GATES, GENERATED
from core.spec.named import Activation, Initializer, Optimizer, Regularizer, _Strict
from core.spec.vocabulary import LOSSES, METRICS, canonical

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
    # false: train even when an identical earlier job of the owner succeeded (store.reuse)
    reuse: bool = True

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
