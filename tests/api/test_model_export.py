"""Downloaded models answer as the service does, outside trainyard (issue 13 §1).

For each backend a real job is trained on an uploaded CSV with string labels, stored on
SQLite and on PostgreSQL, and asked for predictions through POST /predict. Then every
download format is loaded with its own library only and must give the same answers within
1e-5: the `.npz` with `trainyard.client.npzmodel` (numpy), the `.skops` with `skops.io` as a scikit-learn
`Pipeline`, the `.keras` with `keras.saving.load_model`, and `?format=onnx` with onnxruntime.
Each model is trained once per test module (Keras: one small job) and stored in both databases.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_iris

from trainyard.core.callbacks import Callbacks
from trainyard.core.job import train_job
from trainyard.core.validate import validate_spec
from trainyard.store.db import session_scope
from trainyard.store.runs import finish_job

from tests.support import ROOT
from tests.support.api import problem, xor
from tests.support.fakeworker import claim, epochs

TOLERANCE = 1e-5
IRIS = load_iris()
NAMES = np.array(["setosa", "versicolor", "virginica"])


def _csv(rows: np.ndarray, labels: np.ndarray) -> bytes:
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    lines += [",".join(f"{v:g}" for v in row) + f",{label}" for row, label in zip(rows, labels)]
    return ("\n".join(lines) + "\n").encode()


IRIS_CSV = _csv(IRIS.data, NAMES[IRIS.target])
TWO = IRIS.target > 0  # versicolor / virginica: a binary problem with string labels
BINARY_CSV = _csv(IRIS.data[TWO], NAMES[IRIS.target[TWO]])
# raw rows, some far outside the training data (the scaling must happen inside each file)
ROWS = np.vstack([IRIS.data[::10], [[0, 0, 0, 0], [9.5, 1.2, 8.0, 3.1], [4.4, 4.4, 0.5, 0.1]]])


def _spec(backend: str, layers: list, scale: str = "standard", epochs: int = 30, **training) -> dict:
    return {"name": f"export-{backend}", "backend": backend,
            "dataset": {"id": "UPLOAD", "target": "species", "scale": scale, "test_split": 0.2},
            "model": {"layers": layers}, "training": {"epochs": epochs, "seed": 3, "batch_size": 16, **training}}


DENSE = {"type": "dense", "units": 6}
CASES = {
    # softmax over 3 classes, batch norm and dropout in the stack, leaky ReLU (Keras needs its own layer for it)
    "numpy": (_spec("numpy", [{**DENSE, "activation": "leaky_relu"}, {"type": "batch_norm"},
                              {"type": "dropout", "rate": 0.2}, {"type": "dense", "units": 3, "activation": "softmax"}],
                    optimizer={"name": "adam", "learning_rate": 0.02}), IRIS_CSV),
    "sklearn": (_spec("sklearn", [{**DENSE, "activation": "tanh"}, {"type": "dense", "units": 3, "activation": "softmax"}],
                      scale="minmax", optimizer={"name": "adam", "learning_rate": 0.02}), IRIS_CSV),
    "keras": (_spec("keras", [{**DENSE, "activation": "leaky_relu"}, {"type": "batch_norm"},
                              {"type": "dropout", "rate": 0.2}, {"type": "dense", "units": 3, "activation": "softmax"}],
                    epochs=3, optimizer={"name": "adam", "learning_rate": 0.02}), IRIS_CSV),
    # one sigmoid unit: probabilities [1 - p, p], labels by p > 0.5
    "numpy-binary": (_spec("numpy", [{**DENSE, "activation": "relu"}, {"type": "dense", "units": 1, "activation": "sigmoid"}],
                           optimizer={"name": "adam", "learning_rate": 0.02}), BINARY_CSV),
    "sklearn-binary": (_spec("sklearn", [{**DENSE, "activation": "relu"}, {"type": "dense", "units": 1, "activation": "sigmoid"}],
                             optimizer={"name": "adam", "learning_rate": 0.02}), BINARY_CSV),
}
_TRAINED: dict = {}


def _upload(caller, data: bytes) -> str:
    r = caller.post("/datasets", data={"file": (io.BytesIO(data), "iris.csv"), "name": "iris", "format": "csv",
                                       "target": "species"}, content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def _result(case: str, spec: dict, data: bytes):
    """The case's TrainResult, trained once per module: the same data and spec give the same model on either
    database (training does not depend on where the job is stored)."""
    if case not in _TRAINED:
        upload = (data, "csv", "species", None, None)
        _TRAINED[case] = train_job(validate_spec(spec), Callbacks(), upload=upload)
    return _TRAINED[case]


def trained_job(api, case: str) -> tuple[str, dict]:
    """A succeeded job of `case` on `api`'s database, recorded as a worker records it; its id and the service's
    answer for ROWS."""
    spec, data = copy.deepcopy(CASES[case][0]), CASES[case][1]
    spec["dataset"]["id"] = _upload(api.alice, data)
    job = api.alice.submit(spec)
    result = _result(case, spec, data)
    attempt = claim(api, job["id"])
    epochs(api, job["id"], attempt, result.history)
    with session_scope(api.sessions) as s:
        finish_job(session=s, job_id=job["id"], attempt=attempt, status="succeeded", metrics=result.metrics,
                   model=result.model, model_format=result.format, versions=result.versions,
                   epoch=len(result.history))
    r = api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": ROWS.tolist()})
    assert r.status_code == 200, r.get_json()
    return job["id"], r.get_json()


def download(api, job_id: str, fmt: str | None = None) -> bytes:
    r = api.alice.get(f"/jobs/{job_id}/model" + (f"?format={fmt}" if fmt else ""))
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.data


def check_onnx(model: bytes, answer: dict) -> ort.InferenceSession:
    """onnxruntime runs the graph on raw double rows and gives the service's predictions and probabilities."""
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["inputs"]
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"inputs": ROWS})))
    assert outputs["predictions"].tolist() == answer["predictions"]
    if answer["probabilities"] is not None:
        np.testing.assert_allclose(outputs["probabilities"], answer["probabilities"], rtol=0, atol=TOLERANCE)
        meta = session.get_modelmeta().custom_metadata_map
        assert json.loads(meta["classes"]) == answer["classes"]
    return session


@pytest.mark.parametrize("case", ["numpy", "numpy-binary"])
def test_npz_with_numpy_alone_and_onnx(api_both, case):
    from trainyard.client.npzmodel import load

    job_id, answer = trained_job(api_both, case)
    assert answer["classes"] == (NAMES.tolist() if case == "numpy" else ["versicolor", "virginica"])
    model = load(io.BytesIO(download(api_both, job_id)))
    assert model.predict(ROWS).tolist() == answer["predictions"]
    np.testing.assert_allclose(model.predict_proba(ROWS), answer["probabilities"], rtol=0, atol=TOLERANCE)
    assert model.classes == answer["classes"]
    check_onnx(download(api_both, job_id, "onnx"), answer)


@pytest.mark.parametrize("case", ["sklearn", "sklearn-binary"])
def test_skops_is_a_pipeline_that_predicts_labels_and_onnx(api_both, case):
    import skops.io
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    job_id, answer = trained_job(api_both, case)
    data = download(api_both, job_id)
    # the documented safe load: only the types a trainyard file holds are trusted (skops refuses anything else)
    untrusted = skops.io.get_untrusted_types(data=data)
    assert untrusted == []  # all of them are scikit-learn's own
    pipeline = skops.io.loads(data, trusted=untrusted)
    assert type(pipeline) is Pipeline and [name for name, _ in pipeline.steps] == ["scaler", "mlp"]
    assert type(pipeline["scaler"]) is (MinMaxScaler if case == "sklearn" else StandardScaler)
    assert type(pipeline["mlp"]) is MLPClassifier
    assert pipeline.predict(ROWS).tolist() == answer["predictions"]
    assert pipeline.classes_.tolist() == answer["classes"]
    np.testing.assert_allclose(pipeline.predict_proba(ROWS), answer["probabilities"], rtol=0, atol=TOLERANCE)
    check_onnx(download(api_both, job_id, "onnx"), answer)


def test_keras_file_scales_inside_and_onnx_needs_no_tensorflow(api_both, tmp_path):
    import keras

    job_id, answer = trained_job(api_both, "keras")
    path = tmp_path / "model.keras"
    path.write_bytes(download(api_both, job_id))
    model = keras.saving.load_model(path)  # Keras alone, safe mode, no custom objects
    np.testing.assert_allclose(model.predict(ROWS, verbose=0), answer["probabilities"], rtol=0, atol=TOLERANCE)
    assert model.layers[0].name == "preprocessing"
    meta = json.loads(zipfile.ZipFile(path).read("trainyard.json"))
    assert meta["classes"] == answer["classes"] == NAMES.tolist()
    assert NAMES[model.predict(ROWS, verbose=0).argmax(axis=1)].tolist() == answer["predictions"]
    check_onnx(download(api_both, job_id, "onnx"), answer)


def test_regression_onnx_outputs_the_values(api):
    spec = {"name": "diabetes", "dataset": {"builtin": "diabetes", "scale": "standard"},
            "model": {"layers": [{"type": "dense", "units": 8, "activation": "sigmoid"}, {"type": "dense", "units": 1}]},
            "training": {"epochs": 5, "seed": 1, "batch_size": 64}, "backend_options": {"dtype": "float64"}}
    job = api.alice.submit(spec)
    from tests.support.fakeworker import train

    train(api, job["id"], spec)
    x = [[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02], [0.0] * 10]
    answer = api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": x}).get_json()
    session = ort.InferenceSession(download(api, job["id"], "onnx"), providers=["CPUExecutionProvider"])
    (values,) = session.run(["predictions"], {"inputs": np.array(x)})
    assert values.shape == (2,) and answer["probabilities"] is None
    np.testing.assert_allclose(values, answer["predictions"], rtol=TOLERANCE, atol=0)


def test_format_is_checked_and_named(api):
    job = api.alice.submit(xor())
    body = problem(api.alice.get(f"/jobs/{job['id']}/model?format=pickle"), 422)
    assert body["errors"][0]["loc"] == "format" and "native, onnx" in body["errors"][0]["msg"]
    problem(api.alice.get(f"/jobs/{job['id']}/model?format=onnx"), 409)  # queued: no model yet
    problem(api.bob.get(f"/jobs/{job['id']}/model?format=onnx"), 404)


def test_the_api_predicts_and_exports_keras_models_without_tensorflow(tmp_path):
    """The API reads a Keras file's numpy copy of its weights, to predict and to export: a process serving
    both never imports TensorFlow, and answers as Keras itself does within 1e-5."""
    import keras

    keras_model = _result("keras", {**CASES["keras"][0], "dataset": {**CASES["keras"][0]["dataset"], "id": "x"}},
                          CASES["keras"][1]).model
    blob = tmp_path / "m.keras"
    blob.write_bytes(keras_model)
    expected = keras.saving.load_model(blob).predict(ROWS, verbose=0)
    code = f"""
import json, sys
import numpy as np
from trainyard.api.model_export import onnx_model
from trainyard.core.backends import load_serving_predictor
data = open({str(blob)!r}, "rb").read()
exported = onnx_model(data, "m")
proba = load_serving_predictor(data).predict_proba(np.array({ROWS.tolist()!r}))
print(json.dumps([len(exported) > 0, sorted(m for m in ("tensorflow", "keras") if m in sys.modules), proba.tolist()]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    exported, imported, proba = json.loads(out.stdout.splitlines()[-1])
    assert exported and imported == []
    np.testing.assert_allclose(proba, expected, rtol=0, atol=TOLERANCE)


def test_the_npz_loader_imports_without_core():
    code = ("import sys, trainyard.client.npzmodel; print(sorted({m.split('.')[0] if m.split('.')[0] != 'trainyard' "
            "else '.'.join(m.split('.')[:2]) for m in sys.modules} & {'trainyard.core', 'trainyard.store', "
            "'trainyard.api', 'sklearn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_downloads_onnx_named_after_the_job(api, monkeypatch, capsys, tmp_path):
    """`trainyard download ID --format onnx` over real HTTP writes `ID.onnx`, which onnxruntime runs."""
    import threading

    from werkzeug.serving import make_server

    from trainyard.client.cli import main

    job_id, answer = trained_job(api, "numpy")
    r = api.alice.get(f"/jobs/{job_id}/model?format=onnx")
    assert r.headers["Content-Disposition"] == 'attachment; filename="export-numpy.onnx"'
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("TRAINYARD_URL", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("TRAINYARD_TOKEN", api.alice.token)
        monkeypatch.chdir(tmp_path)
        assert main(["download", job_id, "--format", "onnx", "--json"]) == 0
    finally:
        server.shutdown()
        thread.join(10)
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["path"] == f"{job_id}.onnx"
    check_onnx((tmp_path / f"{job_id}.onnx").read_bytes(), answer)
