"""A job spec translated into Keras objects: the Sequential model, its loss, optimizer and metrics.

Keras is imported inside each function: importing this module must not load TensorFlow.
"""

from __future__ import annotations

from typing import Any

from trainyard.core.spec import INITIALIZERS, BatchNorm, Dense, Dropout, Initializer, JobSpec

# metrics Keras computes per mini-batch exactly as trainyard defines them; the rest
# (precision, recall, f1: macro averages) are computed at each epoch's end by the backend
KERAS_METRICS = ("accuracy", "mean_squared_error", "mean_absolute_error", "r2")
ALLOWED_MODULES = frozenset({"keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.optimizers",
                             "keras.losses", "keras.metrics", "keras.src.models.sequential", "builtins", None})


# The translation tables: each spec name → its Keras object. tests/core/test_vocabulary.py holds them to the
# capability table (every name keras supports is here) and to the model file's allowed activations.
# spec activation → the Dense layer's Keras activation; leaky_relu is a linear Dense and a LeakyReLU layer after it
KERAS_ACTIVATIONS = {"linear": "linear", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "softmax": "softmax",
                     "leaky_relu": "linear"}
# spec initializer → (Keras class, whether it draws at random and so takes a seed); its parameters are the spec's
# (vocabulary.INITIALIZERS), named as Keras names them
KERAS_INITIALIZERS: dict[str, tuple[str, bool]] = {
    "zeros": ("Zeros", False), "ones": ("Ones", False), "constant": ("Constant", False),
    "normal": ("RandomNormal", True), "uniform": ("RandomUniform", True),
    "glorot_uniform": ("GlorotUniform", True), "glorot_normal": ("GlorotNormal", True),
    "he_uniform": ("HeUniform", True), "he_normal": ("HeNormal", True),
}
KERAS_LOSSES = {"mean_squared_error": "MeanSquaredError", "mean_absolute_error": "MeanAbsoluteError",
                "binary_crossentropy": "BinaryCrossentropy", "categorical_crossentropy": "CategoricalCrossentropy"}
# spec optimizer → Keras class; its parameters are the spec's (vocabulary.OPTIMIZERS), named as Keras names them
KERAS_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}
# Every class a trainyard .keras file's config may name (the layers, the penalty, the metrics and every class the
# tables above translate to); anything else is refused before Keras reads it.
ALLOWED_CLASSES = frozenset({
    "Sequential", "InputLayer", "Normalization", "Dense", "Dropout", "BatchNormalization", "LeakyReLU", "DTypePolicy",
    "L1L2", "BinaryAccuracy", "CategoricalAccuracy", "MeanSquaredError", "MeanAbsoluteError", "R2Score",
    "__tensor__", "__numpy__",
    *(cls for cls, _ in KERAS_INITIALIZERS.values()), *KERAS_LOSSES.values(), *KERAS_OPTIMIZERS.values(),
})
def initializer(init: Initializer, seed: int) -> Any:
    """The Keras initializer for a spec initializer; random ones get their own seed."""
    import keras

    cls, seeded = KERAS_INITIALIZERS[init.name]
    kwargs = {name: getattr(init, name) for name in INITIALIZERS[init.name]}
    return getattr(keras.initializers, cls)(**kwargs, **({"seed": seed} if seeded else {}))


def _dense(layer: Dense, i: int, seed: int) -> list:
    import keras

    name = layer.activation.name
    reg = layer.kernel_regularizer
    dense = keras.layers.Dense(
        layer.units, activation=KERAS_ACTIVATIONS[name], use_bias=layer.use_bias,
        kernel_initializer=initializer(layer.kernel_initializer, seed + 2 * i),
        bias_initializer=initializer(layer.bias_initializer, seed + 2 * i + 1),
        kernel_regularizer=keras.regularizers.L1L2(reg.l1, reg.l2) if reg else None, name=f"dense_{i}")
    if name != "leaky_relu":
        return [dense]
    # Keras 3's "leaky_relu" string uses slope 0.2; the spec's alpha needs its own layer
    return [dense, keras.layers.LeakyReLU(negative_slope=layer.activation.alpha, name=f"leaky_relu_{i}")]


def build_model(spec: JobSpec, n_features: int) -> Any:
    """The spec's layers as a keras.Sequential with seeded initializers and dropout."""
    import keras

    seed = spec.training.seed
    layers: list = [keras.Input(shape=(n_features,), name="inputs")]
    for i, layer in enumerate(spec.model.layers):
        if isinstance(layer, Dense):
            layers += _dense(layer, i, seed)
        elif isinstance(layer, Dropout):
            layers.append(keras.layers.Dropout(layer.rate, seed=seed + 2 * i, name=f"dropout_{i}"))
        elif isinstance(layer, BatchNorm):
            layers.append(keras.layers.BatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon,
                                                          name=f"batch_norm_{i}"))
    return keras.Sequential(layers, name="trainyard")


def loss(spec: JobSpec) -> Any:
    import keras

    return getattr(keras.losses, KERAS_LOSSES[spec.training.loss])()


def optimizer(spec: JobSpec) -> Any:
    import keras

    o = spec.training.optimizer
    params = {k: v for k, v in o.model_dump().items() if k != "name"}
    return getattr(keras.optimizers, KERAS_OPTIMIZERS[o.name])(**params)


def metrics(spec: JobSpec) -> list:
    """Keras metric objects named as trainyard names them (so logs say `accuracy`, `val_accuracy`)."""
    import keras

    m, units = keras.metrics, spec.model.output.units
    table = {
        "accuracy": lambda: m.BinaryAccuracy(name="accuracy") if units == 1 else m.CategoricalAccuracy(name="accuracy"),
        "mean_squared_error": lambda: m.MeanSquaredError(name="mean_squared_error"),
        "mean_absolute_error": lambda: m.MeanAbsoluteError(name="mean_absolute_error"),
        "r2": lambda: m.R2Score(name="r2"),
    }
    return [table[name]() for name in spec.training.metrics or () if name in table]
