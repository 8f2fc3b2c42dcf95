"""The Keras backend: refusals, layer translation, digits accuracy, history/cancellation/divergence/checkpoints,
and `.keras` files that round-trip exactly and refuse tampering. Few, small fits: TensorFlow is slow to start."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from trainyard.core.backends import get_backend, load_predictor
from trainyard.core.callbacks import Callbacks
from trainyard.core.errors import Cancelled, Diverged, ModelFileError, SpecError
from trainyard.core.spec import parse_spec
from trainyard.core.validate import validate_spec

from tests.support.backend_data import prepared


XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)


def xor_doc(**training) -> dict:
    return {"backend": "keras", "dataset": {"builtin": "xor", "shuffle": False},
            "model": {"layers": [{"type": "dense", "units": 3, "activation": "relu",
                                  "kernel_initializer": {"name": "normal", "mean": 0.75, "stddev": 0.01}},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {"loss": "mse", "optimizer": {"name": "adam", "learning_rate": 0.05}, "batch_size": 4,
                         "epochs": 6, "seed": 20, "metrics": ["accuracy"], **training}}


def train(doc: dict, callbacks: Callbacks | None = None):
    spec, data = prepared(doc)
    return spec, data, get_backend("keras").train(spec, data, callbacks or Callbacks())


@pytest.fixture(scope="module")
def xor_model() -> bytes:
    return train(xor_doc())[2].model


# --- without TensorFlow ----------------------------------------------------------------------------


def test_importing_core_and_checking_keras_specs_does_not_import_tensorflow():
    code = ("import json, sys, trainyard.core.backends.keras_backend\n"
            "from trainyard.core.validate import validate_spec\n"
            f"validate_spec(json.loads({json.dumps(xor_doc())!r}))\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("change, loc, fragment", [
    ({"model": {"layers": [{"type": "dense", "units": 1, "activation": "step"}]}, "training": {"optimizer": "perceptron"}},
     "model.layers[0].activation", "no gradient"),
    ({"model": {"layers": [{"type": "dense", "units": 1, "activation": "step"}]}, "training": {"optimizer": "perceptron"}},
     "training.optimizer", "only in backend 'numpy'"),
    ({"backend_options": {"jit_compile": "sometimes"}}, "backend_options.jit_compile", "true, false or \"auto\""),
    ({"backend_options": {"intra_op_threads": -1}}, "backend_options.intra_op_threads", ">= 0"),
    ({"backend_options": {"alpha": 0.1}}, "backend_options.alpha", "unknown option for backend 'keras'"),
])
def test_refusals_name_the_field(change, loc, fragment):
    doc = {**xor_doc(), **change}
    with pytest.raises(SpecError) as exc:
        validate_spec(doc)
    assert any(e["loc"] == loc and fragment in e["msg"] for e in exc.value.errors), exc.value.errors


def test_normalised_spec_has_kerass_option_defaults():
    assert validate_spec(xor_doc()).backend_options == {"jit_compile": "auto", "steps_per_execution": 1,
                                                        "intra_op_threads": 0, "inter_op_threads": 0}


# --- translation -------------------------------------------------------------------------------------


def test_layers_initializers_regularizers_and_leaky_slope_are_the_specs():
    from trainyard.core.backends.keras_build import build_model

    spec = parse_spec({"backend": "keras", "dataset": {"builtin": "iris"}, "model": {"layers": [
        {"type": "dense", "units": 4, "activation": {"name": "leaky_relu", "alpha": 0.3},
         "kernel_initializer": {"name": "constant", "value": 0.5}, "bias_initializer": "ones",
         "kernel_regularizer": {"l1": 0.01, "l2": 0.02}},
        {"type": "batch_norm", "momentum": 0.9, "epsilon": 0.01}, {"type": "dropout", "rate": 0.25},
        {"type": "dense", "units": 3, "activation": "softmax", "kernel_initializer": {"name": "normal", "mean": 0.75, "stddev": 0.01}},
    ]}, "training": {"seed": 7}})
    model = build_model(spec, 4)
    dense, leaky, bn, drop, out = model.layers
    assert np.all(dense.kernel.numpy() == 0.5) and np.all(dense.bias.numpy() == 1.0)
    assert dense.kernel_regularizer.get_config() == {"l1": 0.01, "l2": 0.02}
    assert leaky.negative_slope == pytest.approx(0.3) and leaky(np.array([[-1.0]], np.float32)).numpy()[0, 0] == pytest.approx(-0.3)
    assert (bn.momentum, bn.epsilon, drop.rate) == (0.9, 0.01, 0.25)
    w = out.kernel.numpy()
    assert abs(w.mean() - 0.75) < 0.01 and 0.002 < w.std() < 0.03
    assert np.array_equal(build_model(spec, 4).layers[-1].kernel.numpy(), w)  # seeded: the same every time


# --- training ----------------------------------------------------------------------------------------


def test_digits_reaches_93_percent_with_validation_history_and_exact_round_trip():
    doc = {"backend": "keras", "dataset": {"builtin": "digits", "scale": "standard", "seed": 0, "validation_split": 0.15},
           "model": {"layers": [{"type": "dense", "units": 64, "activation": "relu"}, {"type": "dropout", "rate": 0.1},
                                {"type": "dense", "units": 10, "activation": "softmax"}]},
           "training": {"epochs": 8, "seed": 0, "batch_size": 32, "optimizer": "adam", "metrics": ["accuracy", "f1"],
                        "early_stopping": {"monitor": "val_f1", "patience": 3}}}
    spec, data, result = train(doc)
    assert result.metrics["test_accuracy"] >= 0.93
    assert list(result.history[0]) == ["epoch", "loss", "accuracy", "f1", "val_loss", "val_accuracy", "val_f1", "time"]
    predictor = load_predictor(result.model)
    pre = data.preprocessing
    raw = data.x_test * np.array(pre.scale) + np.array(pre.offset)
    # the saved model scales raw rows itself (its `preprocessing` layer) and scores what training measured
    trained = np.asarray(pre.classes)[np.argmax(predictor.model.predict(raw.astype(np.float32), verbose=0), axis=1)]
    assert np.array_equal(predictor.predict(raw), trained)
    hits = int(np.sum(trained == np.asarray(pre.classes)[data.y_test]))
    assert abs(hits - result.metrics["test_accuracy"] * len(raw)) <= 1  # float32 scaling may move one borderline row
    assert predictor.predict_proba(raw[:3]).shape == (3, 10)


def test_final_loss_is_kerass_own_with_penalties_even_when_outputs_saturate():
    # constant kernel 2.0 on 30 standardised features: most outputs saturate. The final metrics used to take
    # the cross-entropy of predict()'s probabilities (clipped at 1e-7: ~12.9) while fit logged ~28.5 from logits
    doc = {"backend": "keras", "dataset": {"builtin": "breast_cancer", "scale": "standard", "seed": 3},
           "model": {"layers": [{"type": "dense", "units": 1, "activation": "sigmoid",
                                 "kernel_initializer": {"name": "constant", "value": 2.0},
                                 "kernel_regularizer": {"l2": 0.001}}]},
           "training": {"optimizer": {"name": "sgd", "learning_rate": 1e-9}, "batch_size": None, "epochs": 1,
                        "shuffle": False, "seed": 1}}
    spec, data, result = train(doc)
    penalty = 0.001 * 2.0**2 * data.x_train.shape[1]
    assert result.history[0]["loss"] > 20 + penalty  # the logits' loss, unclipped, with the L2 penalty
    assert result.metrics["loss"] == pytest.approx(result.history[0]["loss"], rel=1e-5)


def test_cancellation_stops_fit_between_batches_or_epochs():
    rows = []

    def check():
        if len(rows) >= 2:
            raise Cancelled("cancel requested")

    with pytest.raises(Cancelled):
        train(xor_doc(epochs=50, batch_size=1), Callbacks(on_epoch=rows.append, check=check))
    assert len(rows) == 2


def test_divergence_names_the_epoch():
    doc = {"backend": "keras", "dataset": {"builtin": "diabetes"},
           "model": {"layers": [{"type": "dense", "units": 8}, {"type": "dense", "units": 1}]},
           "training": {"optimizer": {"name": "sgd", "learning_rate": 10.0}, "epochs": 20, "seed": 0, "batch_size": None}}
    with pytest.raises(Diverged) as exc:
        train(doc)
    assert 1 <= exc.value.epoch < 20


def test_checkpoint_resume_continues_to_the_same_weights():
    states = {}
    _, _, full = train(xor_doc(checkpoint_every=3), Callbacks(on_checkpoint=lambda e, s: states.setdefault(e, s)))
    assert sorted(states) == [3, 6]
    _, _, resumed = train(xor_doc(checkpoint_every=3), Callbacks(resume=states[3]))
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in full.history], rel=1e-6)
    assert resumed.metrics["loss"] == pytest.approx(full.metrics["loss"], rel=1e-6)


# --- model files -------------------------------------------------------------------------------------


def _rewrite(model: bytes, member: str, change) -> bytes:
    src, out = zipfile.ZipFile(io.BytesIO(model)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == member:
                doc = json.loads(data)
                change(doc)
                data = json.dumps(doc).encode()
            dst.writestr(name, data)
    return out.getvalue()


def test_xor_model_file_is_self_contained(xor_model):
    predictor = load_predictor(xor_model)
    assert predictor.spec["backend"] == "keras" and predictor.preprocessing.classes == [0, 1]
    assert set(predictor.predict(XOR_X).tolist()) <= {0, 1}
    assert np.allclose(predictor.predict_proba(XOR_X).sum(axis=1), 1)


def test_a_lambda_layer_is_refused_before_keras_reads_it(xor_model):
    def to_lambda(config):
        config["config"]["layers"][1].update({"class_name": "Lambda", "config": {"function": "os.system"}})

    with pytest.raises(ModelFileError, match="Lambda"):
        load_predictor(_rewrite(xor_model, "config.json", to_lambda))


@pytest.mark.parametrize("change, match", [
    (lambda c: c["config"]["layers"][1].update({"registered_name": "evil>Dense"}), "keras.layers.Dense"),
    (lambda c: c["config"]["layers"][1].update({"module": "os"}), "os.Dense"),
    (lambda c: c["config"]["layers"][1]["config"].update({"activation": "exec"}), "exec"),
])
def test_custom_objects_modules_and_activations_are_refused(xor_model, change, match):
    with pytest.raises(ModelFileError, match=match):
        load_predictor(_rewrite(xor_model, "config.json", change))


def test_damaged_foreign_and_future_files_are_model_file_errors(xor_model):
    with pytest.raises(ModelFileError):
        get_backend("keras").load(xor_model[: len(xor_model) // 2])
    with pytest.raises(ModelFileError, match="version"):
        load_predictor(_rewrite(xor_model, "trainyard.json", lambda m: m.update(format_version=99)))
    weights = bytearray(xor_model)
    start = weights.index(b"HDF")
    weights[start: start + 64] = b"\0" * 64
    with pytest.raises(ModelFileError):
        get_backend("keras").load(bytes(weights))
    foreign = io.BytesIO()
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", "{}")
    with pytest.raises(ModelFileError):
        load_predictor(foreign.getvalue())


def test_files_saved_before_the_scaling_moved_inside_still_predict_the_same(tmp_path):
    """An older final file: the model takes scaled rows and trainyard.json has no `preprocessing_in_model`."""
    import keras

    from trainyard.core.backends import keras_modelfile

    doc = {**xor_doc(), "dataset": {"builtin": "iris", "scale": "standard", "seed": 0}}
    doc["model"]["layers"][-1] = {"type": "dense", "units": 3, "activation": "softmax"}
    doc["training"] = {**doc["training"], "loss": "categorical_crossentropy", "epochs": 2}
    current = load_predictor(train(doc)[2].model)
    assert current.scaled_inside and current.model.layers[0].name == "preprocessing"
    unscaled = keras.Sequential([keras.Input((4,)), *current.model.layers[1:]])
    old = keras_modelfile.dump(unscaled, {"spec": current.spec, "preprocessing": current.preprocessing.to_dict()})
    before = load_predictor(old)
    raw = np.array([[5.1, 3.5, 1.4, 0.2], [6.3, 2.5, 5.0, 1.9], [0.0, 0.0, 0.0, 0.0]])
    assert not before.scaled_inside
    np.testing.assert_allclose(before.predict_proba(raw), current.predict_proba(raw), rtol=0, atol=1e-5)
    # metadata that disagrees with the model's layers is refused, not double-scaled
    with pytest.raises(ModelFileError, match="preprocessing layer"):
        load_predictor(_rewrite(old, "trainyard.json", lambda m: m.update(preprocessing_in_model=True)))
