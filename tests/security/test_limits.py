"""Every safety limit of DESIGN §7 is enforced, configurable, and refused with a problem that names it and its setting.

Each test sets the one limit small; `test_runaway_job_times_out_and_frees_its_worker` (test_runaway_jobs.py)
covers the wall-clock limit with a real worker, test_spec_limits.py the memory, class, layer and spec-size limits,
and tests/worker/test_runner_checkpoints.py the checkpoint budget.
"""

from __future__ import annotations

import dataclasses
import io

import pytest

from trainyard.store.settings import Settings, load_settings

from tests.support import fakeworker as fake_worker
from tests.support.api import XOR_FIT, XOR_INPUTS, problem, xor

LIMITS = {  # setting → a small value the tests use
    "max_request_bytes": 4096, "max_upload_bytes": 8192, "max_parameters": 100, "max_samples_x_features": 100,
    "max_epochs": 300, "max_predict_rows": 3, "max_queued_per_user": 2, "rate_limit_per_second": 1.0,
    "rate_limit_burst": 3, "job_timeout_seconds": 1.5, "worker_memory_bytes": 10 * 2**20, "max_classes": 100,
    "max_layers": 50, "max_spec_bytes": 4096, "max_checkpoint_bytes_per_minute": 1,
}


def names(body: dict, setting: str, value) -> None:
    """The problem names the setting and its limit, in its detail or in one of its errors."""
    text = body["detail"] + " ".join(e["msg"] for e in body.get("errors") or [])
    assert setting in text and (f"{value:,}" in text or str(value) in text), text


def csv(rows: int, width: int = 2) -> bytes:
    head = ",".join(f"x{i}" for i in range(width)) + ",label\n"
    return (head + "".join(",".join(str((r + i) % 2) for i in range(width)) + f",{r % 2}\n"
                           for r in range(rows))).encode()


def upload(caller, data: bytes):
    return caller.post("/datasets", content_type="multipart/form-data",
                       data={"name": "d", "format": "csv", "target": "label", "file": (io.BytesIO(data), "d.csv")})


def test_every_limit_is_a_setting_read_from_the_environment():
    env = {f"TRAINYARD_{name.upper()}": str(value) for name, value in LIMITS.items()}
    settings = load_settings(env)
    assert {name: getattr(settings, name) for name in LIMITS} == LIMITS
    defaults = {f.name: f.default for f in dataclasses.fields(Settings) if f.name in LIMITS}
    assert defaults == {"max_request_bytes": 16 * 2 ** 20, "max_upload_bytes": 256 * 2 ** 20,
                        "max_parameters": 50_000_000, "max_samples_x_features": 200_000_000, "max_epochs": 1_000_000,
                        "max_predict_rows": 100_000, "max_queued_per_user": 1000, "rate_limit_per_second": 100.0,
                        "rate_limit_burst": 200, "job_timeout_seconds": 3600.0, "worker_memory_bytes": 4 * 2**30,
                        "max_classes": 10_000, "max_layers": 1000, "max_spec_bytes": 2**20,
                        "max_checkpoint_bytes_per_minute": 64 * 2**20}


def test_request_body_over_max_request_bytes_is_413(limited):
    api = limited(max_request_bytes=4096)
    names(problem(api.alice.post("/jobs", json=xor(name="x" * 5000)), 413), "max_request_bytes", 4096)
    assert api.alice.get("/jobs").get_json()["items"] == []
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    r = api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0.5, 0.5]] * 500})
    names(problem(r, 413), "max_request_bytes", 4096)


def test_upload_over_max_upload_bytes_is_413_and_uploads_have_their_own_limit(limited):
    api = limited(max_request_bytes=1024, max_upload_bytes=8192)
    assert upload(api.alice, csv(300)).status_code == 201  # ~2.4 KB: over the request limit, under the upload limit
    names(problem(upload(api.alice, csv(1500)), 413), "max_upload_bytes", 8192)
    assert len(api.alice.get("/datasets").get_json()["items"]) == 1


def test_parameters_over_max_parameters_is_422(limited):
    api = limited(max_parameters=100)
    assert api.alice.post("/jobs", json=xor()).status_code == 201  # 2-4-1: 17 parameters
    wide = xor(model={"layers": [{"type": "dense", "units": 64, "activation": "tanh"},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]})  # 257 parameters
    body = problem(api.alice.post("/jobs", json=wide), 422)
    assert body["errors"][0]["loc"] == "model.layers"
    names(body, "max_parameters", 100)


def test_samples_times_features_over_the_limit_is_422_at_upload_and_at_submit(limited):
    api = limited(max_samples_x_features=100)
    body = problem(upload(api.alice, csv(60)), 422)  # 60 x 2 = 120
    assert body["errors"][0]["loc"] == "file"
    names(body, "max_samples_x_features", 100)
    spec = xor(dataset={"builtin": "iris"}, model={"layers": [{"type": "dense", "units": 3, "activation": "softmax"}]})
    body = problem(api.alice.post("/jobs", json=spec), 422)  # 150 x 4
    assert body["errors"][0]["loc"] == "dataset"
    names(body, "max_samples_x_features", 100)


def test_epochs_over_max_epochs_is_422(limited):
    api = limited(max_epochs=300)
    assert api.alice.post("/jobs", json=xor(training={"epochs": 300})).status_code == 201
    body = problem(api.alice.post("/jobs", json=xor(training={"epochs": 301})), 422)
    assert body["errors"][0]["loc"] == "training.epochs"
    names(body, "max_epochs", 300)


def test_predict_rows_over_max_predict_rows_is_422(limited):
    api = limited(max_predict_rows=3)
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    assert api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS[:3]}).status_code == 200
    body = problem(api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS}), 422)
    assert body["errors"][0]["loc"] == "inputs"
    names(body, "max_predict_rows", 3)


def test_queued_jobs_over_max_queued_per_user_is_429_until_one_leaves_the_queue(limited):
    api = limited(max_queued_per_user=2)
    first, _ = api.alice.submit(), api.alice.submit()
    r = api.alice.post("/jobs", json=xor())
    names(problem(r, 429), "max_queued_per_user", 2)
    assert int(r.headers["Retry-After"]) > 0
    assert api.bob.post("/jobs", json=xor()).status_code == 201  # per user
    api.alice.post(f"/jobs/{first['id']}/cancel")
    assert api.alice.post("/jobs", json=xor()).status_code == 201


def test_concurrent_submits_never_pass_max_queued_per_user(limited):
    """The limit is checked again inside the write that inserts the job (SQLite serialises those writes), so
    submits racing past the early check still stop at the limit."""
    import threading

    api = limited(max_queued_per_user=3)
    api.alice.submit()
    api.alice.submit()
    start, codes = threading.Barrier(8), []

    def submit():
        start.wait()
        codes.append(api.alice.post("/jobs", json=xor()).status_code)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [201] + [429] * 7
    assert len(api.alice.get("/jobs?status=queued").get_json()["items"]) == 3


def test_requests_over_the_per_token_rate_are_429_with_retry_after(limited):
    api = limited(rate_limit_per_second=1.0, rate_limit_burst=3)
    assert [api.alice.get("/jobs").status_code for _ in range(3)] == [200, 200, 200]
    r = api.alice.get("/jobs")
    body = problem(r, 429)
    names(body, "rate_limit_per_second", 1)
    names(body, "rate_limit_burst", 3)
    assert 1 <= int(r.headers["Retry-After"]) <= 3  # the moving window of 3 requests in 3 s frees its first slot
    assert api.bob.get("/jobs").status_code == 200  # each token has its own bucket
    assert problem(api.alice.post("/jobs", json=xor()), 429)  # every route, writes included


@pytest.mark.parametrize("setting", ["max_request_bytes", "max_parameters", "max_epochs", "max_queued_per_user",
                                     "rate_limit_per_second", "job_timeout_seconds", "worker_memory_bytes",
                                     "max_classes", "max_layers", "max_spec_bytes", "max_checkpoint_bytes_per_minute"])
def test_a_limit_that_is_not_positive_is_refused_at_start(setting):
    from trainyard.store.settings import SettingsError

    with pytest.raises(SettingsError, match=f"TRAINYARD_{setting.upper()}"):
        load_settings({f"TRAINYARD_{setting.upper()}": "0"})
