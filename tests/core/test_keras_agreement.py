"""The numpy engine agrees with Keras: the same per-epoch losses (1e-4 relative) for specs Keras runs deterministically.

Deterministic means constant initializers, no dropout, `shuffle: false`, and full-batch or
fixed mini-batches (a short last batch included: Keras weights an epoch's loss by batch
size). Covered: mse, mae, binary and categorical cross-entropy (Keras clips at 1e-7);
SGD, momentum, Nesterov, Adam, RMSprop (with and without momentum); batch normalisation
(biased batch variance in training, moving averages for val_loss); L1/L2 penalties;
tanh, leaky ReLU and sigmoid hidden units.
"""

from __future__ import annotations

import copy

import pytest

from trainyard.core.backends import get_backend
from trainyard.core.callbacks import Callbacks

from tests.support.backend_data import prepared


def dense(units: int, activation: str | dict, value: float, **extra) -> dict:
    return {"type": "dense", "units": units, "activation": activation,
            "kernel_initializer": {"name": "constant", "value": value},
            "bias_initializer": {"name": "constant", "value": value / 10}, **extra}


def job(dataset: str, layers: list, loss: str, optimizer: dict, batch_size: int | None, epochs: int = 5, **data) -> dict:
    return {"dataset": {"builtin": dataset, "scale": "standard", "seed": 3, **data},
            "model": {"layers": layers},
            "training": {"loss": loss, "optimizer": optimizer, "batch_size": batch_size, "epochs": epochs,
                         "shuffle": False, "seed": 1}}


CASES = {
    "cce-sgd-full-batch": job("iris", [dense(5, "tanh", 0.1), dense(3, "softmax", -0.2)],
                              "categorical_crossentropy", {"name": "sgd", "learning_rate": 0.1}, None),
    "cce-momentum-batch32": job("iris", [dense(5, "relu", 0.1), dense(3, "softmax", 0.05)],
                                "categorical_crossentropy", {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9}, 32),
    "cce-nesterov-l1l2": job("wine", [dense(6, "sigmoid", 0.05, kernel_regularizer={"l1": 0.001, "l2": 0.01}),
                                      dense(3, "softmax", -0.1, kernel_regularizer={"l2": 0.005})],
                             "categorical_crossentropy", {"name": "sgd", "learning_rate": 0.05, "momentum": 0.8, "nesterov": True}, 25),
    "bce-adam": job("breast_cancer", [dense(4, {"name": "leaky_relu", "alpha": 0.1}, -0.05), dense(1, "sigmoid", 0.1)],
                    "binary_crossentropy", {"name": "adam", "learning_rate": 0.01}, 64),
    # weights large enough that many outputs saturate: Keras takes the loss from the logits, unclipped
    "bce-saturated-sgd": job("breast_cancer", [dense(1, "sigmoid", 2.0)], "binary_crossentropy",
                             {"name": "sgd", "learning_rate": 0.01}, 100),
    "bce-rmsprop": job("breast_cancer", [dense(4, "tanh", 0.02), dense(1, "sigmoid", 0.1)],
                       "binary_crossentropy", {"name": "rmsprop", "learning_rate": 0.005}, 100),
    "mse-rmsprop-momentum-sigmoid-out": job("xor", [dense(2, "sigmoid", 0.75), dense(1, "sigmoid", 0.3)],
                                            "mean_squared_error", {"name": "rmsprop", "learning_rate": 0.01, "momentum": 0.5},
                                            4, epochs=20, scale=None),
    "mse-adam-regression": job("diabetes", [dense(8, "relu", 0.05), dense(1, "linear", 0.5)],
                               "mean_squared_error", {"name": "adam", "learning_rate": 0.05, "epsilon": 1e-5}, 50),
    "mae-sgd-regression": job("diabetes", [dense(8, "tanh", 0.05), dense(1, "linear", 0.5)],
                              "mean_absolute_error", {"name": "sgd", "learning_rate": 0.5}, 64),
    "batchnorm-adam-val": job("iris", [dense(6, "linear", 0.1), {"type": "batch_norm", "momentum": 0.9},
                                       dense(3, "softmax", 0.07)],
                              # Adam turns round-off-sized gradients (the constant init's symmetric units) into
                              # full steps; a modest rate keeps that noise below the tolerance
                              "categorical_crossentropy", {"name": "adam", "learning_rate": 0.005}, 16, validation_split=0.2),
    "batchnorm-l2-full-batch": job("wine", [dense(5, "relu", 0.2, kernel_regularizer={"l2": 0.01}),
                                            {"type": "batch_norm", "epsilon": 0.01}, dense(3, "softmax", 0.1)],
                                   "categorical_crossentropy", {"name": "sgd", "learning_rate": 0.2}, None),
}


def history(backend: str, doc: dict) -> list[dict]:
    doc = copy.deepcopy(doc)
    doc["backend"] = backend
    if backend == "numpy":
        doc["backend_options"] = {"dtype": "float64"}  # Keras runs float32; float64 here keeps the engine's error out of it
    spec, data = prepared(doc)
    return get_backend(backend).train(spec, data, Callbacks()).history


@pytest.mark.parametrize("name", list(CASES))
def test_numpy_engine_losses_equal_kerass(name):
    ours, keras = history("numpy", CASES[name]), history("keras", CASES[name])
    assert len(ours) == len(keras)
    for key in ("loss", "val_loss"):
        if key in keras[0]:
            assert [row[key] for row in ours] == pytest.approx([row[key] for row in keras], rel=1e-4), key
