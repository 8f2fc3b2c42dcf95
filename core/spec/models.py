"""The spec's models: layers, the model, the dataset, training, and the whole job."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from trainyard.core.datasets.catalog import BUILTINS, GENERATED
from trainyard.core.spec import defaults
from trainyard.core.spec.named import Activation, Initializer, Optimizer, Regularizer, _Strict, names_schema
from trainyard.core.spec.vocabulary import LOSSES, METRICS, canonical

# --- layers -------------------------------------------------------------------------------

class Dense(_Strict):
    type: Literal["dense"]
    """A fully connected layer."""
    units: int = Field(ge=1)
    """Number of neurons (the output layer's: 1 or the number of classes, or of regression targets)."""
    activation: Activation = Field(default_factory=lambda: Activation(name="linear"))
    """The activation applied to the layer's weighted sums."""
    kernel_initializer: Initializer = Field(default_factory=lambda: Initializer(name="glorot_uniform"))
    """How the weights are drawn."""
    bias_initializer: Initializer = Field(default_factory=lambda: Initializer(name="zeros"))
    """How the biases are drawn."""
    kernel_regularizer: Regularizer | None = None
    """L1/L2 penalties on this layer's weights, added to the loss."""
    use_bias: bool = True
    """Whether the layer adds a bias."""


class Dropout(_Strict):
    type: Literal["dropout"]
    """Drops inputs at random while training (inverted dropout; nothing is dropped at inference)."""
    rate: float = Field(ge=0, lt=1)
    """The fraction of inputs dropped."""


class BatchNorm(_Strict):
    type: Literal["batch_norm"]
    """Batch normalisation (`batchnormalization` is accepted too)."""
    momentum: float = Field(0.99, ge=0, lt=1)
    """Momentum of the moving mean and variance used at inference."""
    epsilon: float = Field(0.001, gt=0)
    """Added to the variance before dividing by its square root."""


LAYER_ALIASES = {"batchnormalization": "batch_norm", "batch_normalization": "batch_norm", "batchnorm": "batch_norm"}


def _layer_type(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        key = value["type"].strip().lower()
        return {**value, "type": LAYER_ALIASES.get(key, key)}
    return value


Layer = Annotated[Union[Dense, Dropout, BatchNorm], Field(discriminator="type")]


class ModelSpec(_Strict):
    layers: list[Layer] = Field(min_length=1)
    """The layers in order; the input size comes from the dataset and the last (dense) layer is the output."""

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

    builtin: Annotated[str, WithJsonSchema(names_schema("a builtin dataset", BUILTINS))] | None = None
    """A builtin dataset (GET /catalog lists them); give exactly one of `builtin` and `id`."""
    id: str | None = None
    """The id of a dataset uploaded with POST /datasets."""
    path: str | None = None
    """A local file (`trainyard run` only; the service never opens a file a client names)."""
    test_split: float | None = Field(None, ge=0, lt=1)
    """The fraction held out for testing (default: 0 for the logic gates, 0.25 otherwise)."""
    validation_split: float = Field(0.0, ge=0, lt=1)
    """The fraction held out for validation (`val_*` metrics each epoch)."""
    shuffle: bool = True
    """Shuffle before splitting."""
    seed: int | None = Field(None, ge=0, lt=2**32)
    """Seed of the split (default: the training seed)."""
    scale: Literal["standard", "minmax"] | None = None
    """Feature scaling fitted on the training split (null: none); predict applies it to raw inputs."""
    target: str | None = None
    """A CSV upload's target column (default: the one named at upload, else the last)."""
    task: Literal["classification", "regression"] | None = None
    """Overrides the task inferred from the target."""
    n_samples: int | None = Field(None, ge=4, le=10_000_000)
    """Generated datasets (moons, circles) only: how many samples to draw (default 200)."""
    noise: float | None = Field(None, ge=0)
    """Generated datasets (moons, circles) only: the noise's standard deviation (default 0.1)."""

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
        if self.builtin is not None and self.builtin not in GENERATED and (
                self.n_samples is not None or self.noise is not None):
            raise ValueError(f"n_samples and noise apply only to the generated datasets {', '.join(GENERATED)}")
        defaults.dataset(self)  # step 0 of core/spec/defaults.py: a DatasetSpec is complete on its own
        if self.test_split + self.validation_split >= 1:
            raise ValueError("test_split + validation_split must be < 1")
        return self


class EarlyStopping(_Strict):
    """Keras's `EarlyStopping`: stop when `monitor` has not improved by `min_delta` for `patience` epochs."""

    monitor: str | None = None
    """The history value watched (default: `val_loss` when there is a validation split, else `loss`)."""
    patience: int = Field(0, ge=0)
    """Epochs without improvement before stopping."""
    min_delta: float = Field(0.0, ge=0)
    """The smallest change that counts as an improvement."""
    restore_best_weights: bool = False
    """Keep the weights of the best epoch rather than the last."""


class TrainingSpec(_Strict):
    loss: Annotated[str, WithJsonSchema(names_schema("a loss", LOSSES))] | None = None
    """The loss (default: follows the output activation: sigmoid → binary_crossentropy, softmax →
    categorical_crossentropy, step → perceptron, otherwise mean_squared_error)."""
    optimizer: Optimizer | None = None
    """The optimizer (default: perceptron for a step output, else rmsprop)."""
    batch_size: int | None = Field(32, ge=1)
    """Samples per gradient step; null: the whole training split (full-batch gradient descent)."""
    epochs: int = Field(1, ge=1)
    """Passes over the training split."""
    shuffle: bool = True
    """Shuffle the training split every epoch."""
    seed: int | None = Field(None, ge=0, lt=2**32)
    """Drives initialisation, shuffling and dropout (default: drawn at random and recorded)."""
    metrics: list[Annotated[str, WithJsonSchema(names_schema("a metric", METRICS))]] | None = None
    """Reported each epoch and at the end (default: accuracy for classification, mean_absolute_error for
    regression)."""
    early_stopping: EarlyStopping | None = None
    """Stop when the monitored value stops improving."""
    checkpoint_every: int | None = Field(None, ge=1)
    """Save a checkpoint every this many epochs, so a retried job resumes from it."""

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
    """A label of your choice (list filter `name`)."""
    backend: Literal["numpy", "sklearn", "keras"] = "numpy"
    """numpy (trainyard's own engine), sklearn (MLPClassifier/MLPRegressor) or keras (TensorFlow)."""
    device: Literal["cpu", "gpu"] = "cpu"
    """The queue the job runs on."""
    priority: Literal["low", "normal", "high"] = "normal"
    """Order among your own queued jobs on its queue: high before normal before low (users share a queue fairly
    whatever their priorities; README "Sharing the fleet")."""
    dataset: DatasetSpec
    """Where the data comes from and how it is split and scaled."""
    model: ModelSpec
    """The network."""
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    """How to train it."""
    backend_options: dict[str, Any] = Field(default_factory=dict)
    """Settings only one backend has (GET /catalog: backends.*.options), validated by that backend."""
    # false: train even when an identical earlier job of the owner succeeded (store.reuse)
    reuse: bool = True
    """Reuse the results of an identical earlier job of yours that succeeded (same spec, seed, data and library
    versions) instead of training again; false trains anyway."""

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
