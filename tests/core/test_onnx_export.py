"""The ONNX exporter (core.export): every activation, layer and output form of the spec's vocabulary, run by
onnxruntime against the service's own predictor; and old model files that cannot be exported say why."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from trainyard.core.backends import load_predictor
from trainyard.core.callbacks import Callbacks
from trainyard.core.errors import ModelFileError
from trainyard.core.export.onnx_graph import IR_VERSION, OPSET, to_onnx
from trainyard.core.export.stack import read_stack
from trainyard.core.job import train_job
from trainyard.core.spec.vocabulary import ACTIVATIONS
from trainyard.core.validate import validate_spec

RNG = np.random.default_rng(7)


def run(model: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"inputs": x})))


def trained(doc: dict):
    result = train_job(validate_spec(doc), Callbacks())
    return result, load_predictor(result.model)


def agree(result, predictor, x: np.ndarray) -> dict[str, np.ndarray]:
    out = run(to_onnx(read_stack(result.model)), x)
    if predictor.preprocessing.task == "classification":
        assert out["predictions"].tolist() == predictor.predict(x).tolist()
        np.testing.assert_allclose(out["probabilities"], predictor.predict_proba(x), rtol=0, atol=1e-5)
    else:
        np.testing.assert_allclose(out["predictions"], predictor.predict(x), rtol=1e-5, atol=1e-6)
    return out


def iris(hidden: str, output: str = "softmax", dtype: str = "float32", **training) -> dict:
    return {"dataset": {"builtin": "iris", "scale": "standard"}, "backend_options": {"dtype": dtype},
            "model": {"layers": [{"type": "dense", "units": 5, "activation": hidden}, {"type": "batch_norm"},
                                 {"type": "dropout", "rate": 0.3}, {"type": "dense", "units": 3, "activation": output}]},
            "training": {"epochs": 3, "seed": 2, "batch_size": 16, **training}}


# rows far outside the data too: every activation's saturated and negative sides are reached
X_IRIS = np.vstack([RNG.normal([5.8, 3.0, 3.8, 1.2], [0.8, 0.4, 1.8, 0.8], size=(60, 4)), RNG.normal(0, 20, (20, 4))])


@pytest.mark.parametrize("hidden", sorted(set(ACTIVATIONS) - {"step", "softmax"}))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_hidden_activation_with_batch_norm_and_dropout(hidden, dtype):
    agree(*trained(iris(hidden, dtype=dtype)), X_IRIS)


def test_softmax_hidden_and_a_linear_output_whose_rows_can_be_negative():
    """A linear output trained with MSE is clipped at 0 and normalised (uniform where a row is all negative)."""
    result, predictor = trained(iris("softmax", output="linear", loss="mean_squared_error"))
    out = agree(result, predictor, X_IRIS)
    assert np.allclose(out["probabilities"].sum(axis=1), 1)


def test_step_units_and_the_perceptron():
    doc = {"dataset": {"builtin": "and"}, "model": {"layers": [{"type": "dense", "units": 1, "activation": "step"}]},
           "training": {"epochs": 10, "seed": 0, "optimizer": "perceptron"}}
    result, predictor = trained(doc)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.5]], dtype=float)
    out = agree(result, predictor, x)
    assert out["predictions"][:4].tolist() == [0, 0, 0, 1]


def test_sigmoid_output_gives_both_class_columns():
    doc = {"dataset": {"builtin": "xor"}, "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                                                               {"type": "dense", "units": 1, "activation": "sigmoid"}]},
           "training": {"epochs": 50, "seed": 1, "optimizer": {"name": "adam", "learning_rate": 0.05}}}
    out = agree(*trained(doc), RNG.normal(0.5, 1, (30, 2)))
    assert out["probabilities"].shape == (30, 2)


@pytest.mark.parametrize("hidden", ["relu", "tanh", "sigmoid", "linear"])
def test_scikit_learn_models(hidden):
    doc = iris(hidden, dtype="float64")
    doc["backend"], doc["backend_options"] = "sklearn", {}
    del doc["model"]["layers"][1:3]  # scikit-learn has no batch norm or dropout
    doc["dataset"]["scale"] = "minmax"
    agree(*trained(doc), X_IRIS)


def test_regression_with_several_outputs_gives_the_values(tmp_path):
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=80, n_features=3, n_targets=2, random_state=0)
    np.savez(tmp_path / "data.npz", X=x, y=y)
    doc = {"dataset": {"path": str(tmp_path / "data.npz"), "scale": "minmax"},
           "model": {"layers": [{"type": "dense", "units": 4, "activation": "relu"}, {"type": "dense", "units": 2}]},
           "training": {"epochs": 3, "seed": 0}}
    result, predictor = trained(doc)
    out = agree(result, predictor, x[:10] * 3)
    assert out["predictions"].shape == (10, 2)


def test_the_graph_is_a_plain_opset_17_model_with_its_classes():
    result, _ = trained(iris("relu"))
    model = onnx.load_from_string(to_onnx(read_stack(result.model)))
    assert model.ir_version == IR_VERSION and [o.version for o in model.opset_import] == [OPSET]
    assert {n.op_type for n in model.graph.node}.isdisjoint({"Dropout", "BatchNormalization"})  # inference form
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["classes"]) == [0, 1, 2] and meta["task"] == "classification"
    assert [i.name for i in model.graph.input] == ["inputs"]
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


@pytest.fixture(scope="module")
def keras_model() -> bytes:
    """One small Keras model file for the tests below (TensorFlow is slow to start)."""
    return trained({**iris("relu", epochs=1), "backend": "keras", "backend_options": {}})[0].model


def test_a_keras_file_without_its_numpy_copy_cannot_be_exported(keras_model):
    """Files saved before the copy existed: the service still predicts with them; ONNX export says why not."""
    from trainyard.core.backends import keras_modelfile

    src, out = zipfile.ZipFile(io.BytesIO(keras_model)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name != keras_modelfile.WEIGHTS_MEMBER:
                dst.writestr(name, src.read(name))
    with pytest.raises(ModelFileError, match="older trainyard"):
        read_stack(out.getvalue())


def test_a_float32_scikit_learn_model_is_exported_as_its_pipeline_computes_it():
    doc = iris("relu")
    doc["backend"], doc["backend_options"] = "sklearn", {"dtype": "float32"}
    del doc["model"]["layers"][1:3]
    result, predictor = trained(doc)
    assert predictor.estimator.coefs_[0].dtype == np.float32
    out = agree(result, predictor, X_IRIS)
    np.testing.assert_allclose(out["probabilities"], predictor.predict_proba(X_IRIS), rtol=0, atol=1e-12)


def test_a_pickle_in_a_keras_files_weights_copy_is_refused_unread(keras_model, tmp_path):
    """The copy is read as the numpy engine's own files are: allow_pickle=False, every member checked."""
    from trainyard.core.backends import keras_modelfile

    canary = tmp_path / "canary"

    class Payload:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    hostile = io.BytesIO()
    np.savez(hostile, trainyard=np.array([Payload()], dtype=object), allow_pickle=True)
    src, out = zipfile.ZipFile(io.BytesIO(keras_model)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, hostile.getvalue() if name == keras_modelfile.WEIGHTS_MEMBER else src.read(name))
    with pytest.raises(ModelFileError):
        read_stack(out.getvalue())
    assert not canary.exists()
