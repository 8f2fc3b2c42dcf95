"""Predicting with scikit-learn and Keras models in the API process (a Keras file through its numpy copy: no TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from trainyard.core.backends import load_predictor

from tests.support import ROOT
from tests.support.api import XOR_INPUTS
from tests.support.fakeworker import train

SKLEARN = json.loads((ROOT / "examples" / "sklearn_xor_relu.json").read_text())
SKLEARN["training"]["epochs"] = 50
KERAS = json.loads((ROOT / "examples" / "keras_xor_model1.json").read_text())
KERAS["training"]["epochs"] = 20


def check_predict(api, spec: dict, extension: str) -> dict:
    job = api.alice.submit(spec)
    train(api, job["id"], spec)
    model = api.alice.get(f"/jobs/{job['id']}/model")
    assert model.headers["Content-Disposition"].endswith(f'.{extension}"')
    out = api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS}).get_json()
    local = load_predictor(model.data)  # the downloaded file predicts what the API says
    x = np.array(XOR_INPUTS, dtype=float)
    assert out["predictions"] == local.predict(x).tolist()
    np.testing.assert_allclose(out["probabilities"], local.predict_proba(x), rtol=1e-6)
    assert all(len(row) == 2 and abs(sum(row) - 1) < 1e-6 for row in out["probabilities"])
    return out


def test_sklearn_predict(api):
    out = check_predict(api, SKLEARN, "skops")
    assert set(out["predictions"]) <= {0, 1}


def test_keras_predict(api):
    check_predict(api, KERAS, "keras")


def test_the_api_starts_and_takes_keras_jobs_without_tensorflow(tmp_path):
    code = f"""
import json, sys
from trainyard.store.settings import Settings
from tests.support.api import make_api
api = make_api(Settings(home={str(tmp_path)!r}))
assert api.alice.post("/jobs", json=json.loads({json.dumps(KERAS)!r})).status_code == 201
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_converged_sklearn_job_says_it_stopped_early_and_why(api_both):
    """A scikit-learn job that converged showed `progress 2989/10000` and nothing else: it now says why it stopped."""
    api = api_both
    spec = {"backend": "sklearn", "dataset": {"builtin": "iris", "scale": "standard"},
            "model": {"layers": [{"type": "dense", "units": 3, "activation": "softmax"}]},
            "training": {"epochs": 500, "seed": 1}, "backend_options": {"tol": 0.05, "n_iter_no_change": 2}}
    job = api.alice.submit(spec)
    assert job["progress"]["stop_reason"] is None  # queued: nothing stopped
    train(api, job["id"], spec)
    body = api.alice.get(f"/jobs/{job['id']}").get_json()
    epoch = body["progress"]["epoch"]
    assert body["status"] == "succeeded" and 0 < epoch < 500
    assert body["progress"]["stop_reason"] == (
        f"stopped early at epoch {epoch} of 500: the training loss improved by less than tol=0.05 for "
        "n_iter_no_change=2 epochs in a row (scikit-learn's convergence rule; lower backend_options.tol or raise "
        "n_iter_no_change to train longer)")
    listed = api.alice.get("/jobs").get_json()["items"][0]
    assert listed["progress"] == body["progress"]
    full = api.alice.submit({**spec, "training": {"epochs": 3, "seed": 1}})
    train(api, full["id"], {**spec, "training": {"epochs": 3, "seed": 1}})
    assert api.alice.get(f"/jobs/{full['id']}").get_json()["progress"] == {"epoch": 3, "epochs": 3,
                                                                            "stop_reason": None}
