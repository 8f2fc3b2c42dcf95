"""Bounded answers (issue 12, item 4): no response grows with what a user can make large.

Predict is limited by rows × outputs (`max_predict_values`), history comes in pages, job lists carry summaries
(never specs), and confusion matrices are served apart from the job body.
"""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest

from trainyard.api import schemas
from trainyard.core.job import train_job
from trainyard.core.validate import validate_spec
from trainyard.store.db import session_scope
from trainyard.store.models import Job
from trainyard.store.runs import finish_job

from tests.support import fakeworker as fake_worker
from tests.support.api import XOR_FIT, problem, xor

K = 3000  # classes: the red team's many-class model (findings #31-32, #47c)
CLASSES = sorted(f"c{i}" for i in range(K))  # the model's class order (np.unique of the labels)


def many_class_csv() -> bytes:
    """Two rows per class, one feature: 0.1 MB that makes a 3,000-unit softmax legal."""
    return ("x,label\n" + "".join(f"{i % 97},c{i // 2}\n" for i in range(2 * K))).encode()


MANY = {"name": "many", "dataset": {"test_split": 0.5},
        "model": {"layers": [{"type": "dense", "units": K, "activation": "softmax"}]},
        "training": {"epochs": 1, "seed": 1, "batch_size": 256}}


@pytest.fixture(scope="module")
def many_trained():
    """The 3,000-class model trained once in-process (as a worker would), for every test and database."""
    spec = {**MANY, "dataset": {"id": "upload", **MANY["dataset"]}}
    return train_job(validate_spec(spec), upload=(many_class_csv(), "csv", "label", "classification", None))


def many_class_job(api, trained) -> dict:
    """Alice uploads the CSV, submits the spec, and the result of `trained` is recorded as its worker's."""
    ds = api.alice.post("/datasets", content_type="multipart/form-data", data={
        "name": "many", "format": "csv", "target": "label", "file": (io.BytesIO(many_class_csv()), "many.csv")})
    assert ds.status_code == 201, ds.get_json()
    job = api.alice.submit({**MANY, "dataset": {"id": ds.get_json()["id"], **MANY["dataset"]}})
    attempt = fake_worker.claim(api, job["id"])
    fake_worker.epochs(api, job["id"], attempt, trained.history)
    with session_scope(api.sessions) as s:
        finish_job(session=s, job_id=job["id"], attempt=attempt, status="succeeded", metrics=trained.metrics,
                   model=trained.model, model_format=trained.format, versions=trained.versions, epoch=1)
    return job


def names(body: dict, *words: str) -> None:
    text = body["detail"] + " ".join(e["msg"] for e in body.get("errors") or [])
    for word in words:
        assert word in text, text


# --- predict: rows × outputs ------------------------------------------------------------------------------------


def test_predict_on_3000_classes_is_refused_before_computing_and_names_both_numbers(api_both, many_trained):
    api = api_both
    job = many_class_job(api, many_trained)
    ok = api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0], [5]]})
    out = ok.get_json()
    schemas.PredictResponse.model_validate(out)
    assert out["classes"] == CLASSES  # the column order of `probabilities`
    assert [len(row) for row in out["probabilities"]] == [K, K]
    assert out["predictions"] == [CLASSES[int(np.argmax(row))] for row in out["probabilities"]]
    # 334 rows × 3,000 outputs = 1,002,000 values: over the default limit of 1,000,000.
    body = problem(api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0]] * 334}), 422)
    assert body["errors"][0]["loc"] == "inputs"
    names(body, "334 rows", "3,000 outputs", "1,002,000 values", "1,000,000", "max_predict_values")
    assert api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0]] * 333}).status_code == 200
    # The red team's 10,000 rows (a 40 KB request that took 5 GB) cost no more than reading the request.
    tracemalloc.start()
    try:
        r = api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0]] * 10_000})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    names(problem(r, 422), "10,000 rows", "30,000,000 values", "max_predict_values")
    assert peak < 8 * 2**20, f"refusing took {peak / 2**20:.1f} MiB"


def test_max_predict_values_is_a_setting_and_regression_counts_its_outputs(limited):
    from trainyard.store.settings import Settings, SettingsError, load_settings

    assert Settings().max_predict_values == 1_000_000
    assert load_settings({"TRAINYARD_MAX_PREDICT_VALUES": "7"}).max_predict_values == 7
    with pytest.raises(SettingsError, match="TRAINYARD_MAX_PREDICT_VALUES"):
        load_settings({"TRAINYARD_MAX_PREDICT_VALUES": "0"})
    api = limited(max_predict_values=7)
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    assert api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0, 1]] * 3}).status_code == 200  # 3 × 2
    names(problem(api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0, 1]] * 4}), 422),
          "4 rows", "2 outputs", "8 values", "max_predict_values")
    reg = {"name": "reg", "dataset": {"builtin": "diabetes"}, "model": {"layers": [
        {"type": "dense", "units": 1, "activation": "linear"}]}, "training": {"epochs": 2, "seed": 1}}
    job = api.alice.submit(reg)
    fake_worker.train(api, job["id"], reg)
    out = api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0.0] * 10] * 7}).get_json()
    names(problem(api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0.0] * 10] * 8}), 422),
          "8 rows", "1 output", "8 values", "max_predict_values")
    assert len(out["predictions"]) == 7 and out["probabilities"] is None and out["classes"] is None


# --- history: pages ---------------------------------------------------------------------------------------------


def record(api, job_id: str, attempt: int, first: int, last: int) -> None:
    fake_worker.epochs(api, job_id, attempt, [{"epoch": e, "loss": 1.0 / e, "time": 0.001} for e in
                                              range(first, last + 1)])


def pages(api, job_id: str, **query) -> list[dict]:
    out, since = [], query.pop("since", 0)
    for _ in range(100):  # bounded: far more pages than any test makes
        params = "&".join(f"{k}={v}" for k, v in {"since": since, **query}.items())
        page = api.alice.get(f"/jobs/{job_id}/history?{params}").get_json()
        schemas.History.model_validate(page)
        out.append(page)
        if not page["has_more"]:
            return out
        assert page["next_since"] == page["epochs"][-1]["epoch"] > since
        since = page["next_since"]
    raise AssertionError("history never ended")


def test_history_is_paged_and_pages_hold_every_epoch_exactly_once(api_both):
    api = api_both
    job = api.alice.submit(xor(training={"epochs": 3000}))
    attempt = fake_worker.claim(api, job["id"])
    for first, last in ((1, 7), (8, 1499), (1500, 1500), (1501, 2500)):  # chunks of uneven sizes
        record(api, job["id"], attempt, first, last)
    first = api.alice.get(f"/jobs/{job['id']}/history").get_json()  # the default page
    assert [r["epoch"] for r in first["epochs"]] == list(range(1, 1001))
    assert first["has_more"] is True and first["next_since"] == 1000
    got = pages(api, job["id"], limit=333)
    assert [len(p["epochs"]) for p in got] == [333] * 7 + [169]
    assert [r["epoch"] for p in got for r in p["epochs"]] == list(range(1, 2501))
    assert got[-1]["next_since"] == 2500  # where a follower of a running job continues
    # New epochs while someone pages (the job runs on) come after, never twice.
    middle = api.alice.get(f"/jobs/{job['id']}/history?since=2400&limit=50").get_json()
    record(api, job["id"], attempt, 2501, 2600)
    rest = pages(api, job["id"], since=middle["next_since"], limit=1000)
    assert [r["epoch"] for r in middle["epochs"]] + [r["epoch"] for p in rest for r in p["epochs"]] == list(
        range(2401, 2601))
    tail = api.alice.get(f"/jobs/{job['id']}/history?since=2600").get_json()
    assert tail == {"epochs": [], "next_since": 2600, "has_more": False}


def test_history_limit_is_bounded(api_both):
    api = api_both
    job = api.alice.submit(xor())
    for bad, msg in (("0", "must be 1 to 10000"), ("10001", "must be 1 to 10000"), ("x", "'x' is not an integer")):
        body = problem(api.alice.get(f"/jobs/{job['id']}/history?limit={bad}"), 422)
        assert body["errors"] == [{"loc": "limit", "msg": msg}]
    assert api.alice.get(f"/jobs/{job['id']}/history?limit=10000").get_json() == {
        "epochs": [], "next_since": 0, "has_more": False}
    assert problem(api.bob.get(f"/jobs/{job['id']}/history"), 404)


# --- job lists: summaries -----------------------------------------------------------------------------------------


def test_a_list_of_jobs_with_huge_specs_is_small_and_never_reads_the_specs(api_both):
    api = api_both
    huge = {**xor(), "model": {"layers": [{"type": "dense", "units": 1, "activation": "relu"}] * 100_000}}
    with session_scope(api.sessions) as s:  # as stored: the red team's 100,000-layer spec (finding #21)
        for i in range(3):
            s.add(Job(owner_id=api.alice.user_id, name=f"huge{i}", backend="numpy", device="cpu", spec=huge,
                      epochs=5))
    small = api.alice.submit(XOR_FIT)
    fake_worker.train(api, small["id"], XOR_FIT)
    tracemalloc.start()
    try:
        r = api.alice.get("/jobs?limit=10")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    body = r.get_json()
    schemas.JobList.model_validate(body)
    assert len(r.data) < 8000, len(r.data)
    assert peak < 4 * 2**20, f"listing took {peak / 2**20:.1f} MiB: were the specs read?"
    assert [j["name"] for j in body["items"]] == ["xor-fit", "huge2", "huge1", "huge0"]
    assert all("spec" not in j for j in body["items"])
    done = body["items"][0]
    assert done["metrics"]["accuracy"] == 1.0 and done["progress"] == {"epoch": 200, "epochs": 200, "stop_reason": None}
    assert done["links"]["self"] == f"/api/v1/jobs/{small['id']}" and done["error_code"] is None
    assert api.alice.get(f"/jobs/{small['id']}").get_json()["spec"]["training"]["epochs"] == 200  # full body


# --- confusion matrices: apart from the job body --------------------------------------------------------------


def test_a_many_class_job_body_is_small_and_its_confusion_matrices_have_their_own_route(api_both, many_trained):
    api = api_both
    job = many_class_job(api, many_trained)
    r = api.alice.get(f"/jobs/{job['id']}")
    body = r.get_json()
    schemas.Job.model_validate(body)
    assert len(r.data) < 16_000, len(r.data)  # 36 MB before (finding #47c)
    assert not any("confusion" in k for k in body["metrics"])
    assert body["metrics"]["test_accuracy"] == many_trained.metrics["test_accuracy"]
    link = body["links"]["confusion_matrix"]
    assert link == f"/api/v1/jobs/{job['id']}/confusion-matrix"
    assert len(api.alice.get("/jobs").data) < 4000
    for split, key in (("test", "test_confusion_matrix"), ("train", "confusion_matrix")):
        r = api.alice.get(f"/jobs/{job['id']}/confusion-matrix?split={split}")
        assert r.status_code == 200 and r.mimetype == "application/json"
        matrix = r.get_json()
        assert matrix["split"] == split and matrix["n_classes"] == K
        assert matrix["matrix"] == many_trained.metrics[key]
        assert sum(map(sum, matrix["matrix"])) == K  # one test (and one train) sample per class
    assert api.alice.get(f"/jobs/{job['id']}/confusion-matrix").get_json()["split"] == "test"  # the default
    missing = problem(api.alice.get(f"/jobs/{job['id']}/confusion-matrix?split=val"), 404)
    names(missing, "no val confusion matrix", "it has train, test")
    assert problem(api.alice.get(f"/jobs/{job['id']}/confusion-matrix?split=bogus"), 422)["errors"][0]["loc"] == \
        "split"
    assert problem(api.bob.get(f"/jobs/{job['id']}/confusion-matrix?split=test"), 404)["detail"] == \
        problem(api.bob.get("/jobs/nope/confusion-matrix"), 404)["detail"].replace("'nope'", f"'{job['id']}'")


def test_a_small_job_confusion_matrix_and_a_job_without_one(api_both):
    api = api_both
    job = api.alice.submit(XOR_FIT)
    assert problem(api.alice.get(f"/jobs/{job['id']}/confusion-matrix"), 409)["detail"].startswith(
        "the job is queued")
    fake_worker.train(api, job["id"], XOR_FIT)
    assert api.alice.get(f"/jobs/{job['id']}/confusion-matrix?split=train").get_json() == {
        "split": "train", "n_classes": 2, "matrix": [[2, 0], [0, 2]]}
    assert problem(api.alice.get(f"/jobs/{job['id']}/confusion-matrix?split=test"), 404)  # XOR has no test split
    assert api.alice.delete(f"/jobs/{job['id']}").status_code == 204
    with session_scope(api.sessions) as s:  # the matrices went with the job
        from sqlalchemy import func, select

        from trainyard.store.models import Artifact, Blob
        assert s.scalar(select(func.count()).select_from(Artifact)) == 0
        assert s.scalar(select(func.count()).select_from(Blob)) == 0
