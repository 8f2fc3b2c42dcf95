"""The scikit-learn backend: the notes' exact XOR output, scikit-learn's own defaults, every refusal with its path,
hooks that leave `fit` bit-identical, and model files that load safely or not at all."""

from __future__ import annotations

import copy
import io
import json
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor

from trainyard.core.backends import get_backend, load_predictor, sklearn_fit
from trainyard.core.backends.sklearn_backend import FORMAT_VERSION, dump_model
from trainyard.core.callbacks import Callbacks
from trainyard.core.capabilities import SKLEARN_DEFAULTS
from trainyard.core.datasets.prepared import PreparedData, Preprocessing
from trainyard.core.errors import Cancelled, Diverged, ModelFileError, SpecError
from trainyard.core.spec import normalised, parse_spec
from trainyard.core.validate import validate_spec

from tests.support.backend_data import prepared


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
XOR_Y = np.array([0, 1, 1, 0])


def xor_doc(activation: str = "relu", **training) -> dict:
    return {"backend": "sklearn", "dataset": {"builtin": "xor", "shuffle": False},
            "model": {"layers": [{"type": "dense", "units": 2, "activation": activation},
                                 {"type": "dense", "units": 1, "activation": "logistic"}]},
            "training": {"epochs": 10000, "seed": 20, **training}}


def digits_doc(**training) -> dict:
    return {"backend": "sklearn", "dataset": {"builtin": "digits", "scale": "standard", "seed": 0},
            "model": {"layers": [{"type": "dense", "units": 64, "activation": "relu"},
                                 {"type": "dense", "units": 10, "activation": "softmax"}]},
            "training": {"epochs": 40, "seed": 0, "batch_size": 64, **training}}


def train(doc: dict, callbacks: Callbacks | None = None):
    spec, data = prepared(doc)
    return spec, data, get_backend("sklearn").train(spec, data, callbacks or Callbacks())


# --- the notes' XOR ------------------------------------------------------------------------------


@pytest.mark.parametrize("activation, predictions, score", [("logistic", [1, 1, 1, 1], 0.5), ("relu", [0, 1, 1, 0], 1.0)])
def test_notes_xor_gives_the_notes_printed_result(activation, predictions, score):
    doc = json.loads((EXAMPLES / f"sklearn_xor_{activation}.json").read_text())
    spec, data, result = train(doc)
    predictor = load_predictor(result.model)
    assert predictor.predict(XOR_X).tolist() == predictions
    assert result.metrics["accuracy"] == score
    # the same call as the notes, on the same data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        notes = MLPClassifier(activation=activation, max_iter=10000, hidden_layer_sizes=(2,), random_state=20).fit(XOR_X, XOR_Y)
    assert notes.predict(XOR_X).tolist() == predictions
    assert [row["loss"] for row in result.history] == notes.loss_curve_


# --- defaults ------------------------------------------------------------------------------------


def test_defaults_table_matches_the_installed_scikit_learn():
    p = MLPClassifier().get_params()
    o = SKLEARN_DEFAULTS["options"]
    assert (SKLEARN_DEFAULTS["epochs"], SKLEARN_DEFAULTS["optimizer"]) == (p["max_iter"], p["solver"])
    assert p["batch_size"] == "auto"  # min(200, n): what batch_size 200 clipped to the split means
    sgd, adam = SKLEARN_DEFAULTS["optimizers"]["sgd"], SKLEARN_DEFAULTS["optimizers"]["adam"]
    assert (sgd["learning_rate"], sgd["momentum"], sgd["nesterov"]) == (p["learning_rate_init"], p["momentum"], p["nesterovs_momentum"])
    assert (adam["beta_1"], adam["beta_2"], adam["epsilon"]) == (p["beta_1"], p["beta_2"], p["epsilon"])
    assert (o["alpha"], o["tol"], o["n_iter_no_change"], o["learning_rate_schedule"], o["power_t"], o["max_fun"]) == (
        p["alpha"], p["tol"], p["n_iter_no_change"], p["learning_rate"], p["power_t"], p["max_fun"])


def test_normalised_spec_shows_what_scikit_learn_runs():
    doc = xor_doc()
    del doc["training"]["epochs"]
    n = normalised(validate_spec(doc))
    t = n["training"]
    assert (t["epochs"], t["batch_size"]) == (200, 200)
    assert t["optimizer"] == {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}
    assert n["backend_options"] == {"alpha": 1e-4, "tol": 1e-4, "n_iter_no_change": 10, "dtype": "float64"}
    assert normalised(validate_spec(n)) == n  # validating a normalised spec changes nothing


def test_given_values_are_kept_and_sgd_gets_scikit_learns_momentum():
    doc = xor_doc(optimizer={"name": "sgd", "learning_rate": 0.1}, batch_size=2)
    t = normalised(validate_spec(doc))["training"]
    assert t["optimizer"] == {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True}
    assert t["batch_size"] == 2
    doc = xor_doc(optimizer={"name": "adam", "epsilon": 1e-3})
    assert validate_spec(doc).training.optimizer.epsilon == 1e-3


def test_early_stopping_becomes_n_iter_no_change_and_tol():
    doc = digits_doc(early_stopping={"monitor": "val_accuracy", "patience": 3})
    doc["dataset"]["validation_split"] = 0.2
    n = normalised(validate_spec(doc))
    assert n["training"]["early_stopping"]["min_delta"] == 1e-4
    assert (n["backend_options"]["n_iter_no_change"], n["backend_options"]["tol"]) == (3, 1e-4)


# --- refusals ------------------------------------------------------------------------------------


def _with(doc: dict, path: str, value) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = doc
    for p in parents:
        node = node[p]
    node[last] = value
    return doc


THREE = _with(xor_doc(), "model.layers", [{"type": "dense", "units": 4, "activation": "relu"},
                                          {"type": "dense", "units": 3, "activation": "relu"},
                                          {"type": "dense", "units": 1, "activation": "sigmoid"}])
REFUSALS = [
    (_with(THREE, "model.layers.1.activation", "tanh"), "model.layers[1].activation", "one activation for all hidden layers"),
    (_with(THREE, "model.layers.1", {"type": "dropout", "rate": 0.5}), "model.layers[1].type", "no dropout"),
    (_with(THREE, "model.layers.1", {"type": "batch_norm"}), "model.layers[1].type", "no batch normalisation"),
    (_with(xor_doc(), "model.layers.0.activation", {"name": "leaky_relu", "alpha": 0.1}), "model.layers[0].activation", "leaky"),
    (_with(xor_doc(), "model.layers.0.kernel_regularizer", {"l2": 0.01}), "model.layers[0].kernel_regularizer", "backend_options.alpha"),
    (_with(xor_doc(), "model.layers.0.kernel_regularizer", {"l1": 0.01}), "model.layers[0].kernel_regularizer", "per-layer"),
    (_with(xor_doc(), "model.layers.0.kernel_initializer", "he_normal"), "model.layers[0].kernel_initializer", "own initial weights"),
    (_with(xor_doc(), "model.layers.1.bias_initializer", "ones"), "model.layers[1].bias_initializer", "own initial weights"),
    (_with(xor_doc(), "model.layers.0.use_bias", False), "model.layers[0].use_bias", "always have biases"),
    (_with(xor_doc(), "model.layers.1", {"type": "dense", "units": 2, "activation": "softmax"}), "model.layers[1].activation", "1 sigmoid unit"),
    (_with(xor_doc(), "model.layers.1", {"type": "dense", "units": 1, "activation": "linear"}), "model.layers[1].activation", "not a linear one"),
    (_with(xor_doc(), "model.layers.1.activation", "tanh"), "model.layers[1].activation", "no tanh output activation"),
    (xor_doc(loss="mse"), "training.loss", "sigmoid output with binary_crossentropy only"),
    (xor_doc(optimizer="rmsprop"), "training.optimizer", "sgd, adam and lbfgs"),
    (xor_doc(checkpoint_every=10), "training.checkpoint_every", "cannot resume"),
    (_with(xor_doc(), "device", "gpu"), "device", "CPU only"),
    (_with(xor_doc(), "backend_options", {"momentum": 0.5}), "backend_options.momentum", "unknown option"),
    (_with(xor_doc(), "backend_options", {"max_fun": 100}), "backend_options.max_fun", "does not apply to optimizer 'adam'"),
    (_with(xor_doc(), "backend_options", {"alpha": -1}), "backend_options.alpha", "must be >= 0"),
    (_with(xor_doc(early_stopping={"min_delta": 0.1}), "backend_options", {"tol": 0.2}), "backend_options.tol", "disagrees"),
    (xor_doc(early_stopping={"patience": 0}), "training.early_stopping.patience", ">= 1"),
]


@pytest.mark.parametrize("doc, loc, fragment", REFUSALS, ids=[r[1] + ":" + r[2][:20] for r in REFUSALS])
def test_refusals_name_the_field_and_the_reason(doc, loc, fragment):
    with pytest.raises(SpecError) as exc:
        validate_spec(doc)
    hits = [e for e in exc.value.errors if e["loc"] == loc]
    assert hits and any(fragment in e["msg"] for e in hits), exc.value.errors


def test_step_units_are_refused_with_the_reason():
    doc = {"backend": "sklearn", "dataset": {"builtin": "and"},
           "model": {"layers": [{"type": "dense", "units": 1, "activation": "step"}]}, "training": {"optimizer": "perceptron"}}
    with pytest.raises(SpecError) as exc:
        validate_spec(doc)
    msgs = {e["loc"]: e["msg"] for e in exc.value.errors}
    assert "no gradient" in msgs["model.layers[0].activation"]
    assert "only in backend 'numpy'" in msgs["training.optimizer"]


# --- hooks inside one fit ------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_hooked_fit_is_bit_identical_to_a_plain_fit(solver):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(150, 5)), rng.integers(0, 3, size=150)
    x_val, y_val = rng.normal(size=(30, 5)), rng.integers(0, 3, size=30)
    params = dict(hidden_layer_sizes=(7, 5), solver=solver, max_iter=30, random_state=3, batch_size=32)
    spec = parse_spec(digits_doc(metrics=["accuracy"], early_stopping={"monitor": "loss"}))
    rows = []
    reporter = sklearn_fit.Reporter(spec, Callbacks(on_epoch=rows.append, check=lambda: None), x_val, y_val, "classification", 3)
    hooked = sklearn_fit.HookedMLPClassifier(**params)
    sklearn_fit.fit(hooked, reporter, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPClassifier(**params).fit(x, y)
    assert hooked.n_iter_ == plain.n_iter_ and [r["loss"] for r in rows] == plain.loss_curve_
    for a, b in zip(hooked.coefs_ + hooked.intercepts_, plain.coefs_ + plain.intercepts_):
        assert np.array_equal(a, b)
    assert all("val_loss" in r and "val_accuracy" in r for r in rows)


def test_hooked_regressor_is_bit_identical_too():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(80, 3)), rng.normal(size=80)
    params = dict(hidden_layer_sizes=(6,), max_iter=25, random_state=5)
    spec = parse_spec({**digits_doc(), "model": {"layers": [{"type": "dense", "units": 1}]}})
    reporter = sklearn_fit.Reporter(spec, Callbacks(), x[:0], y[:0], "regression", None)
    hooked = sklearn_fit.HookedMLPRegressor(**params)
    sklearn_fit.fit(hooked, reporter, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPRegressor(**params).fit(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(hooked.coefs_, plain.coefs_))


def test_cancellation_stops_inside_fit_between_epochs():
    rows = []

    def check():
        if len(rows) >= 3:
            raise Cancelled("cancel requested")

    with pytest.raises(Cancelled):
        train(digits_doc(), Callbacks(on_epoch=rows.append, check=check))
    assert len(rows) == 3


def test_lbfgs_reports_one_row_and_can_be_cancelled():
    spec, data, result = train(digits_doc(optimizer="lbfgs", epochs=30))
    assert len(result.history) == 1 and result.history[0]["epoch"] <= 30
    assert result.metrics["test_accuracy"] > 0.9
    calls = []

    def check():
        calls.append(1)
        if len(calls) > 5:
            raise Cancelled("cancel requested")

    with pytest.raises(Cancelled):
        get_backend("sklearn").train(spec, data, Callbacks(check=check))


def test_divergence_is_reported_with_its_epoch():
    doc = {"backend": "sklearn", "dataset": {"builtin": "diabetes"},
           "model": {"layers": [{"type": "dense", "units": 8, "activation": "linear"}, {"type": "dense", "units": 1}]},
           "training": {"optimizer": {"name": "sgd", "learning_rate": 1.0}, "epochs": 50, "seed": 0}}
    with pytest.raises(Diverged) as exc:
        train(doc)
    assert exc.value.epoch >= 1


# --- real datasets -------------------------------------------------------------------------------


def test_digits_reaches_93_percent_and_restores_the_best_validation_weights():
    doc = digits_doc(early_stopping={"monitor": "val_accuracy", "patience": 3, "restore_best_weights": True})
    doc["dataset"]["validation_split"] = 0.2
    spec, data, result = train(doc)
    assert result.metrics["test_accuracy"] >= 0.93
    assert {"epoch", "loss", "val_loss", "val_accuracy", "time"} == set(result.history[0])
    assert result.metrics["val_accuracy"] == max(r["val_accuracy"] for r in result.history)
    assert np.array(result.metrics["test_confusion_matrix"]).sum() == len(data.x_test)


def test_regression_trains_mlpregressor_and_round_trips():
    doc = {"backend": "sklearn", "dataset": {"builtin": "diabetes", "scale": "standard", "seed": 0},
           "model": {"layers": [{"type": "dense", "units": 8, "activation": "linear"}, {"type": "dense", "units": 1}]},
           "training": {"optimizer": "lbfgs", "epochs": 500, "seed": 0, "metrics": ["r2"]}}
    spec, data, result = train(doc)
    assert result.metrics["test_r2"] > 0.35
    predictor = load_predictor(result.model)
    raw_x = data.x_test * np.array(data.preprocessing.scale) + np.array(data.preprocessing.offset)
    assert np.allclose(predictor.predict(raw_x), predictor.estimator.predict(data.x_test), rtol=0, atol=1e-9)


# --- model files ---------------------------------------------------------------------------------


def _labelled_data() -> PreparedData:
    """Two scaled features, string labels: the predictor must unscale nothing by hand and return the labels."""
    rng = np.random.default_rng(2)
    raw = rng.normal(loc=[10.0, -5.0], scale=[3.0, 0.5], size=(120, 2))
    y = (raw[:, 0] - 10 > 4 * (raw[:, 1] + 5)).astype(np.int64)
    offset, scale = raw.mean(axis=0), raw.std(axis=0)
    pre = Preprocessing("classification", 2, classes=["no", "yes"], scaler="standard", offset=offset.tolist(), scale=scale.tolist())
    x = (raw - offset) / scale
    empty = np.zeros((0, 2))
    return PreparedData(x[:100], y[:100], empty, y[:0], x[100:], y[100:], pre), raw


def test_model_file_round_trip_predicts_exactly_what_the_trained_model_did():
    data, raw = _labelled_data()
    doc = {"backend": "sklearn", "dataset": {"path": "unused.csv"},
           "model": {"layers": [{"type": "dense", "units": 5, "activation": "tanh"}, {"type": "dense", "units": 1, "activation": "sigmoid"}]},
           "training": {"epochs": 300, "seed": 4, "metrics": ["accuracy"],
                        "optimizer": {"name": "adam", "learning_rate": 0.01}}}
    spec = validate_spec(doc)
    result = get_backend("sklearn").train(spec, data, Callbacks())
    predictor = load_predictor(result.model)
    # the file's MLP answers with the original labels on scaled rows, the Pipeline on raw rows
    expected = sklearn_fit.predicted(predictor.estimator, data.x_test)
    assert set(expected) <= {"no", "yes"}
    assert predictor.predict(raw[100:]).tolist() == expected.tolist()
    assert result.metrics["test_accuracy"] > 0.9
    proba = predictor.predict_proba(raw[100:])
    assert proba.shape == (20, 2) and np.allclose(proba.sum(axis=1), 1)
    assert predictor.spec == normalised(spec) and predictor.preprocessing == data.preprocessing
    assert type(predictor.estimator) is MLPClassifier  # the saved model is plain scikit-learn, no trainyard class


def _model_bytes() -> bytes:
    data, _ = _labelled_data()
    spec = validate_spec({"backend": "sklearn", "dataset": {"path": "x.csv"},
                          "model": {"layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
                          "training": {"epochs": 5, "seed": 0, "metrics": ["accuracy"]}})
    return get_backend("sklearn").train(spec, data, Callbacks()).model


def _rewrite_schema(model: bytes, change) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(model))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "schema.json":
                schema = json.loads(data)
                change(schema)
                data = json.dumps(schema).encode()
            dst.writestr(name, data)
    return out.getvalue()


def test_a_foreign_type_in_the_schema_is_refused_before_anything_is_imported():
    def point_at_unknown_module(schema):
        schema.update({"__module__": "trainyard_sentinel_module", "__class__": "system"})  # the Pipeline itself

    tampered = _rewrite_schema(_model_bytes(), point_at_unknown_module)
    with pytest.raises(ModelFileError, match="trainyard_sentinel_module.system"):
        load_predictor(tampered)
    assert "trainyard_sentinel_module" not in sys.modules


def test_other_scikit_learn_objects_and_wrong_layouts_are_refused():
    foreign = skops.io.dumps({"trainyard": "{}", "estimator": LogisticRegression()})
    with pytest.raises(ModelFileError, match="LogisticRegression"):
        load_predictor(foreign)
    with pytest.raises(ModelFileError, match="corrupt"):
        load_predictor(skops.io.dumps({"something": [1, 2]}))
    est = load_predictor(_model_bytes()).estimator
    pre = Preprocessing("classification", 2, classes=[0, 1])
    old = dump_model(est, validate_spec(xor_doc()), pre, {})
    newer = _rewrite_schema(old, lambda s: None)
    assert load_predictor(newer).predict(XOR_X).shape == (4,)
    with pytest.raises(ModelFileError, match="version"):
        meta = {"format": "trainyard-sklearn", "format_version": FORMAT_VERSION + 1, "spec": {}, "preprocessing": pre.to_dict()}
        load_predictor(skops.io.dumps({"trainyard": json.dumps(meta), "estimator": est}))


def test_damaged_bytes_are_a_model_file_error():
    model = bytearray(_model_bytes())
    with pytest.raises(ModelFileError):
        load_predictor(bytes(model[: len(model) // 2]))
    start = model.index(b"schema.json")
    model[start + 40: start + 200] = b"x" * 160
    with pytest.raises(ModelFileError):
        get_backend("sklearn").load(bytes(model))


def test_backend_options_reach_the_estimator_and_float32_trains_in_float32():
    from trainyard.core.backends.sklearn_spec import estimator_params

    doc = digits_doc(optimizer={"name": "sgd", "learning_rate": 0.05}, epochs=5)
    doc["backend_options"] = {"learning_rate_schedule": "invscaling", "power_t": 0.25, "alpha": 0.01, "dtype": "float32"}
    spec, data = prepared(doc)
    params = estimator_params(spec, len(data.x_train))
    assert (params["learning_rate"], params["power_t"], params["alpha"], params["batch_size"]) == ("invscaling", 0.25, 0.01, 64)
    assert (params["momentum"], params["nesterovs_momentum"]) == (0.9, True)
    result = get_backend("sklearn").train(spec, data, Callbacks())
    predictor = load_predictor(result.model)
    assert predictor.estimator.coefs_[0].dtype == np.float32
    assert len(result.history) == 5 and result.metrics["test_accuracy"] > 0.8


def test_the_capability_catalog_is_plain_json():
    from trainyard.core.capabilities import catalog

    doc = json.loads(json.dumps(catalog()))
    assert doc["sklearn"]["layers"] == ["dense"] and "rules" in doc["keras"]
    assert doc["sklearn"]["defaults"]["options"]["alpha"] == 1e-4


def test_the_lowest_scikit_learn_allowed_is_the_one_tested_and_has_the_hooked_signature():
    """Issue 11: pyproject allowed scikit-learn 1.5, whose private `_update_no_improvement_count` takes no
    `sample_weight`; every sgd/adam job failed `internal` there. The pin names the minor version CI tests, and the
    hook's signature is the installed one's."""
    import inspect
    import re

    import sklearn
    from sklearn.neural_network import MLPClassifier

    from trainyard.core.backends.sklearn_fit import HookedMLPClassifier

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    lowest = re.search(r'"scikit-learn>=(\d+)\.(\d+)', pyproject).groups()
    assert tuple(int(v) for v in lowest) == tuple(int(v) for v in sklearn.__version__.split(".")[:2])
    ours = inspect.signature(HookedMLPClassifier._update_no_improvement_count)
    theirs = inspect.signature(MLPClassifier._update_no_improvement_count)
    assert len(ours.parameters) == len(theirs.parameters)  # called positionally; names may differ (X / x_val)


def test_a_version_1_file_still_loads_as_the_same_pipeline():
    """Files stored before the Pipeline layout (a dict of meta JSON and an MLP trained on class indices)."""
    import copy

    from sklearn.pipeline import Pipeline

    current = load_predictor(_model_bytes())
    mlp = copy.deepcopy(current.estimator)
    mlp.classes_ = mlp._label_binarizer.classes_ = np.arange(2)
    meta = {"format": "trainyard-sklearn", "format_version": 1, "spec": current.spec,
            "preprocessing": current.preprocessing.to_dict(), "versions": {}}
    old = load_predictor(skops.io.dumps({"trainyard": json.dumps(meta), "estimator": mlp}))
    raw = np.array([[10.0, -5.0], [16.0, -5.5], [4.0, -4.0]])
    assert type(old.pipeline) is Pipeline
    assert old.predict(raw).tolist() == current.predict(raw).tolist()
    assert set(current.predict(raw).tolist()) <= {"no", "yes"}
    np.testing.assert_allclose(old.predict_proba(raw), current.predict_proba(raw), rtol=0, atol=1e-12)
