"""Jobs that would run away, on a real worker process: the wall-clock limit ends one with `timeout` and the worker
takes the next job; a diverging one fails `diverged` in the epoch its loss became non-finite; and after that, no
route's body holds a bare NaN or Infinity — not even when non-finite numbers are written into the database itself.
"""

from __future__ import annotations

import io
import json
import math
from datetime import datetime

import pytest
from sqlalchemy import text

from trainyard.store.settings import Settings

from tests.support import hostile
from tests.support.api import XOR_FIT, XOR_INPUTS, make_api, problem, xor
from tests.support.processes import start_worker, stop_process, wait_for

pytestmark = pytest.mark.timeout(180)
TIMEOUT = 2.5  # job_timeout_seconds
RUNAWAY = xor(name="runaway", training={"epochs": 1_000_000, "seed": 1, "batch_size": 1})
DIVERGES = {"name": "diverges", "dataset": {"builtin": "diabetes"}, "model": {"layers": [{"type": "dense", "units": 1}]},
            "training": {"epochs": 50, "seed": 1, "optimizer": {"name": "sgd", "learning_rate": 1000.0}}}


@pytest.fixture(scope="module")
def live(tmp_path_factory, fast_timings):
    """An app and one real `trainyard worker` (concurrency 1) on SQLite + the filesystem broker."""
    settings = Settings(home=tmp_path_factory.mktemp("runaway") / "home",
                        **{**fast_timings, "job_timeout_seconds": TIMEOUT})
    api = make_api(settings)
    worker = start_worker(api.settings)
    try:
        wait_for(lambda: worker.poll() is not None or api.alice.get("/workers").get_json()["items"], 60,
                 "the worker to register")
        assert worker.poll() is None, (api.settings.home / "worker.log").read_text()
        # Warm the worker (scikit-learn and its datasets load once, in seconds on a busy machine) so the
        # short wall-clock limit stops only the runaway job.
        warm = api.alice.submit({**DIVERGES, "name": "warm-up", "backend": "sklearn", "training": {"epochs": 1}})
        wait_for(lambda: api.alice.get(f"/jobs/{warm['id']}").get_json()["status"] != "queued", 60, "the warm-up")
        finished(api, warm["id"])
        yield api
    finally:
        stop_process(worker)
        api.engine.dispose()


def finished(api, job_id: str, timeout: float = 60) -> dict:
    def done():
        job = api.alice.get(f"/jobs/{job_id}").get_json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout, f"job {job_id} to finish")


def seconds(job: dict) -> float:
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()


def test_runaway_job_times_out_and_frees_its_worker(live):
    runaway = live.alice.submit(RUNAWAY)
    after = live.alice.submit(XOR_FIT)  # queued behind it on the one worker slot
    job = finished(live, runaway["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "timeout", job
    assert "job_timeout_seconds" in job["error"]["message"] and f"{TIMEOUT:g} s" in job["error"]["message"]
    assert TIMEOUT <= seconds(job) < TIMEOUT + 3  # stopped at a batch boundary, not at the lease (3 s) or later
    assert 0 < job["progress"]["epoch"] < 1_000_000
    nxt = finished(live, after["id"], timeout=30)
    assert nxt["status"] == "succeeded" and nxt["worker"] == job["worker"]  # the same worker took the next job


@pytest.mark.parametrize("backend, learning_rate, last", [
    ("numpy", 1000.0, "before"),
    ("sklearn", 1e12, "before"),  # an epoch's loss overflows
    ("sklearn", 1e6, "at"),  # every epoch's loss is finite (up to 1e292) until scikit-learn's tolerance stop;
])                           # the trained model's loss is not: that is divergence too, not success
def test_diverging_job_fails_in_the_epoch_its_loss_became_non_finite(live, backend, learning_rate, last):
    spec = {**DIVERGES, "backend": backend,
            "training": {**DIVERGES["training"], "optimizer": {"name": "sgd", "learning_rate": learning_rate}}}
    job = finished(live, live.alice.submit(spec)["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "diverged", job
    epoch = job["error"]["epoch"]
    history = live.alice.get(f"/jobs/{job['id']}/history").get_json()["epochs"]
    # Every recorded epoch had a finite loss, and training stopped in the epoch whose loss was not:
    # the error's epoch is the one after the last row, or (for the trained model's loss) the last row's.
    assert [row["epoch"] for row in history] == list(range(1, epoch if last == "before" else epoch + 1))
    assert all(isinstance(row["loss"], float) and math.isfinite(row["loss"]) for row in history)
    assert f"epoch {epoch}" in job["error"]["message"] and job["metrics"] is None
    assert problem(live.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0] * 10]}), 409)


def strict_json(body: str, where: str):
    """Parse as JSON that has no NaN / Infinity / -Infinity tokens (Python's json would accept them)."""
    def refuse(token):
        raise AssertionError(f"{where}: bare {token} in {body[:300]}")

    return json.loads(body, parse_constant=refuse)


def check_body(r, where: str) -> None:
    if r.mimetype == "application/octet-stream":  # a model file
        return
    body = r.get_data(as_text=True)
    if r.mimetype in ("application/json", "application/problem+json"):
        strict_json(body, where)
    elif r.mimetype == "text/event-stream":
        for line in body.splitlines():
            if line.startswith("data:"):
                strict_json(line.removeprefix("data:"), where)
    elif r.mimetype == "text/plain":  # Prometheus: +Inf is the format's bucket label; no sample is NaN
        assert not any(line.split()[-1] in ("NaN", "-Inf") for line in body.splitlines()
                       if line and not line.startswith("#")), where
    else:
        assert r.mimetype == "text/html", (where, r.mimetype)


def test_no_body_anywhere_holds_a_bare_nan_or_infinity(live):
    diverged = live.alice.get("/jobs?status=failed").get_json()["items"]
    assert any(j["error_code"] == "diverged" for j in diverged), "run after the diverging job's test"
    job = live.alice.submit(XOR_FIT)
    assert finished(live, job["id"])["status"] == "succeeded"
    up = live.alice.post("/datasets", content_type="multipart/form-data", data={
        "name": "d", "format": "csv", "target": "y", "file": (io.BytesIO(b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"), "d.csv")})
    dataset = up.get_json()["id"]
    # Non-finite numbers written straight into the database (past the store's own null-ing serializer).
    with live.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET metrics = :m, versions = :m WHERE id = :id"),
                     {"m": '{"loss": NaN, "accuracy": Infinity, "val_loss": -Infinity}', "id": job["id"]})
        conn.execute(text("UPDATE history_chunks SET rows = :r WHERE job_id = :id"),
                     {"r": '[{"epoch": 1, "loss": NaN, "accuracy": Infinity, "time": 0.1}]', "id": job["id"]})
        conn.execute(text("UPDATE datasets SET info = :i WHERE id = :id"),
                     {"i": '{"classes": [NaN, Infinity], "feature_names": ["a", "b"]}', "id": dataset})
    ids = [job["id"], *(j["id"] for j in diverged)]
    checked = 0
    for job_id in ids:
        for rule in live.app.url_map.iter_rules():
            if rule.endpoint.startswith("ui."):  # the dashboard's pages (tests/ui)
                continue
            url = hostile.url_for_rule(rule, {"job_id": job_id, "dataset_id": dataset, "sweep_id": "0" * 24})
            for method in sorted(rule.methods - {"OPTIONS", "HEAD", "DELETE"}):
                kw = {"json": {"inputs": XOR_INPUTS}} if method == "POST" else {}
                if rule.endpoint == "jobs.submit_job":
                    kw = {"json": xor(training={"epochs": 1})}
                r = live.client.open(url, method=method, headers={"Authorization": f"Bearer {live.alice.token}"},
                                     **kw)
                assert r.status_code < 500, (method, url, r.data[:300])
                check_body(r, f"{method} {url}")
                checked += 1
    assert checked >= 2 * 17
    # And the injected values come back as null.
    assert live.alice.get(f"/jobs/{job['id']}").get_json()["metrics"] == {"loss": None, "accuracy": None,
                                                                        "val_loss": None}
    assert live.alice.get(f"/jobs/{job['id']}/history").get_json()["epochs"][0]["loss"] is None
