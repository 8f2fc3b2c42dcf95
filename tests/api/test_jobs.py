"""The /jobs routes in-process (no worker: tests/api/fake_worker.py moves jobs through their states)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from trainyard.store.db import session_scope
from trainyard.store.models import Job

from tests.support import fakeworker as fake_worker
from tests.support.api import XOR_FIT, XOR_INPUTS, make_api, problem, xor

def test_submit_returns_the_queued_job_with_location(api):
    r = api.alice.post("/jobs", json=xor())
    assert r.status_code == 201
    job = r.get_json()
    assert r.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["backend"] == "numpy" and job["device"] == "cpu"
    assert job["progress"] == {"epoch": 0, "epochs": 5, "stop_reason": None}
    assert job["spec"]["training"]["loss"] == "binary_crossentropy"  # normalised: defaults filled in
    assert job["spec"]["training"]["optimizer"]["name"] == "rmsprop"
    assert job["queue_position"] == 1
    assert job["pending_reason"] == "no live worker listens on queue cpu"
    assert job["created_at"].endswith("Z") and job["started_at"] is None
    assert job["links"]["predict"] == f"/api/v1/jobs/{job['id']}/predict"
    second = api.alice.submit(xor(device="gpu", backend="keras"))
    assert second["queue_position"] == 1 and second["pending_reason"] == "no live worker listens on queue gpu"
    assert api.alice.submit()["queue_position"] == 2


def test_a_normalised_spec_resubmits_to_the_same_spec(api):
    job = api.alice.submit()
    again = api.alice.submit(job["spec"])
    assert again["spec"] == job["spec"] and again["id"] != job["id"]


def test_auth_is_required_and_checked(api):
    assert problem(api.client.get("/api/v1/jobs"), 401)["detail"].startswith("send 'Authorization: Bearer")
    r = api.client.get("/api/v1/jobs", headers={"Authorization": "Bearer nope"})
    assert problem(r, 401)["detail"] == "the token is unknown"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert problem(api.client.post("/api/v1/jobs", json=xor()), 401)
    assert api.client.get("/api/v1/health").status_code in (200, 503)  # no auth, whatever the broker says
    assert api.client.get("/api/v1/openapi.json").status_code == 200


def test_another_users_job_is_not_found(api):
    job = api.alice.submit()
    for r in (api.bob.get(f"/jobs/{job['id']}"), api.bob.get(f"/jobs/{job['id']}/history"),
              api.bob.post(f"/jobs/{job['id']}/cancel"), api.bob.delete(f"/jobs/{job['id']}"),
              api.bob.get(f"/jobs/{job['id']}/model"), api.bob.get(f"/jobs/{job['id']}/events"),
              api.bob.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0, 0]]})):
        assert problem(r, 404)["detail"] == f"no job {job['id']!r}"
    assert api.bob.get("/jobs").get_json()["items"] == []
    assert api.alice.get(f"/jobs/{job['id']}").status_code == 200


@pytest.mark.parametrize("change, loc, msg", [
    ({"model": {"layers": [{"type": "dense", "units": 2, "activation": "relu"}, {"type": "dropout", "rate": 0.1},
                           {"type": "dense", "units": 1, "activation": "nope"}]}},
     "model.layers[2].activation", "unknown activation 'nope'"),
    ({"training": {"epochs": 0}}, "training.epochs", "greater than or equal to 1"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"dataset": {"builtin": "xor", "path": "/etc/passwd"}}, "dataset.path", "a server never opens a file"),
    ({"dataset": {"path": "data.csv"}}, "dataset.path", "a server never opens a file"),
    ({"dataset": {"id": "missing"}}, "dataset.id", "no dataset with id 'missing'"),
    ({"dataset": {"builtin": "iris"}}, "model.layers[1].units", "1 output unit encodes 2 classes, the dataset has 3"),
    ({"dataset": {"builtin": "mnist"}}, "model.layers[1].units", "1 output unit encodes 2 classes"),
    ({"training": {"epochs": 2_000_000}}, "training.epochs", "over the limit of 1000000 (max_epochs)"),
    ({"model": {"layers": [{"type": "dense", "units": 8000, "activation": "relu"},
                           {"type": "dense", "units": 8000, "activation": "relu"},
                           {"type": "dense", "units": 1, "activation": "sigmoid"}]}},
     "model.layers", "over the limit of 50,000,000 (max_parameters)"),
])
def test_invalid_specs_are_422_naming_the_field(api, change, loc, msg):
    body = problem(api.alice.post("/jobs", json=xor(**change)), 422)
    assert any(e["loc"] == loc and msg in e["msg"] for e in body["errors"]), body["errors"]
    assert api.alice.get("/jobs").get_json()["items"] == []  # nothing was queued


def test_body_must_be_a_json_object(api):
    headers = {"Content-Type": "application/json"}
    assert problem(api.alice.post("/jobs", data="not json", headers=headers), 422)["errors"] == [
        {"loc": "", "msg": "the body is not valid JSON: Expecting value at line 1 column 1"}]
    assert problem(api.alice.post("/jobs", data='{\n  "dataset": }', headers=headers), 422)["errors"] == [
        {"loc": "", "msg": "the body is not valid JSON: Expecting value at line 2 column 14"}]
    assert problem(api.alice.post("/jobs", data="", headers=headers), 422)["errors"] == [
        {"loc": "", "msg": "the body is empty; send a JSON job spec"}]
    assert problem(api.alice.post("/jobs", json=[1, 2]), 422)["errors"] == [
        {"loc": "", "msg": "the body must be a JSON object (a job spec)"}]


def test_nan_and_infinity_in_a_spec_are_422(api):
    body = ('{"dataset": {"builtin": "xor"}, "model": {"layers": [{"type": "dense", "units": 1, '
            '"kernel_initializer": {"name": "normal", "mean": NaN}}]}, "training": {"epochs": 1, "x": [Infinity]}}')
    r = api.alice.post("/jobs", data=body, headers={"Content-Type": "application/json"})
    msg = "not a finite number (NaN and Infinity are not allowed)"
    assert problem(r, 422)["errors"] == [{"loc": "model.layers[0].kernel_initializer.mean", "msg": msg},
                                         {"loc": "training.x[0]", "msg": msg}]


def test_mnist_without_its_folder_is_422(api):
    spec = xor(dataset={"builtin": "mnist"},
               model={"layers": [{"type": "dense", "units": 10, "activation": "softmax"}]})
    body = problem(api.alice.post("/jobs", json=spec), 422)
    assert body["errors"][0]["loc"] == "dataset.builtin" and "TRAINYARD_MNIST_DIR" in body["errors"][0]["msg"]


def test_request_size_limit_is_413(sqlite_settings):
    a = make_api(sqlite_settings, max_request_bytes=2000)
    body = problem(a.alice.post("/jobs", json=xor(name="x" * 3000)), 413)
    assert "limit of 2000 bytes" in body["detail"]


def test_samples_times_features_limit_is_422(sqlite_settings):
    a = make_api(sqlite_settings, max_samples_x_features=1000)
    iris = {"builtin": "iris"}
    layers = {"layers": [{"type": "dense", "units": 3, "activation": "softmax"}]}
    assert a.alice.post("/jobs", json=xor(dataset=iris, model=layers)).status_code == 201  # 150 x 4
    body = problem(a.alice.post("/jobs", json=xor(dataset={"builtin": "wine"}, model=layers)), 422)  # 178 x 13
    assert body["errors"] == [{"loc": "dataset", "msg": "178 samples x 13 features is over the limit of 1,000 "
                                                        "(max_samples_x_features)"}]


def test_queued_jobs_per_user_limit_is_429(sqlite_settings):
    a = make_api(sqlite_settings, max_queued_per_user=2)
    a.alice.submit(), a.alice.submit()
    body = problem(a.alice.post("/jobs", json=xor()), 429)
    assert "max_queued_per_user" in body["detail"] and "limit is 2" in body["detail"]
    a.bob.submit()  # per user


def test_rate_limit_per_token_is_429(sqlite_settings):
    a = make_api(sqlite_settings, rate_limit_per_second=1.0, rate_limit_burst=3)
    codes = [a.alice.get("/jobs").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = a.alice.get("/jobs")
    assert "rate limit of 1 requests per second" in problem(r, 429)["detail"] and int(r.headers["Retry-After"]) >= 1
    assert a.bob.get("/jobs").status_code == 200  # another token has its own bucket


def test_idempotency_key_returns_the_same_job(api):
    first = api.alice.post("/jobs", json=xor(), headers={"Idempotency-Key": "k1"})
    again = api.alice.post("/jobs", json=xor(), headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"] and again.headers["Location"] == first.headers["Location"]
    other = api.bob.post("/jobs", json=xor(), headers={"Idempotency-Key": "k1"})  # keys are per user
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]
    assert len(api.alice.get("/jobs").get_json()["items"]) == 1


def test_an_idempotency_key_reused_for_a_different_spec_is_refused(api):
    first = api.alice.post("/jobs", json=xor(), headers={"Idempotency-Key": "k1"}).get_json()
    r = api.alice.post("/jobs", json=xor(name="changed"), headers={"Idempotency-Key": "k1"})
    body = problem(r, 422)
    assert body["errors"] == [{"loc": "Idempotency-Key", "msg": "already used for a different request"}]
    assert first["id"] in body["detail"]
    assert len(api.alice.get("/jobs").get_json()["items"]) == 1  # nothing new was queued


def test_pagination_and_filters(api):
    ids = [api.alice.submit(xor(name=f"job{i}", backend="sklearn" if i % 3 == 0 else "numpy"))["id"]
           for i in range(7)]
    seen, cursor = [], None
    while True:
        page = api.alice.get("/jobs", query_string={"limit": 3, **({"cursor": cursor} if cursor else {})}).get_json()
        assert len(page["items"]) <= 3
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]  # newest first, each once
    assert [j["name"] for j in api.alice.get("/jobs?backend=sklearn").get_json()["items"]] == ["job6", "job3", "job0"]
    assert [j["id"] for j in api.alice.get("/jobs?name=job4").get_json()["items"]] == [ids[4]]
    api.alice.post(f"/jobs/{ids[1]}/cancel")
    assert [j["id"] for j in api.alice.get("/jobs?status=cancelled").get_json()["items"]] == [ids[1]]
    assert len(api.alice.get("/jobs?status=queued,cancelled").get_json()["items"]) == 7
    assert problem(api.alice.get("/jobs?limit=501"), 422)["errors"] == [{"loc": "limit", "msg": "must be 1 to 500"}]
    assert problem(api.alice.get("/jobs?status=done"), 422)["errors"][0]["loc"] == "status"
    assert problem(api.alice.get("/jobs?cursor=garbage"), 422)["errors"][0]["loc"] == "cursor"


def test_lifecycle_history_model_and_predict(api_both):
    api = api_both
    job = api.alice.submit(XOR_FIT)
    assert problem(api.alice.get(f"/jobs/{job['id']}/model"), 409)["detail"].startswith("the job is queued")
    assert problem(api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS}), 409)
    assert problem(api.alice.delete(f"/jobs/{job['id']}"), 409)
    fake_worker.train(api, job["id"], XOR_FIT)
    done = api.alice.get(f"/jobs/{job['id']}").get_json()
    assert done["status"] == "succeeded" and done["progress"] == {"epoch": 200, "epochs": 200, "stop_reason": None}
    assert done["metrics"]["accuracy"] == 1.0 and done["queue_position"] is None and done["pending_reason"] is None
    assert done["started_at"] and done["finished_at"] and done["attempts"] == 1
    history = api.alice.get(f"/jobs/{job['id']}/history").get_json()["epochs"]
    assert [row["epoch"] for row in history] == list(range(1, 201)) and {"loss", "accuracy", "time"} <= set(history[0])
    assert [row["epoch"] for row in api.alice.get(f"/jobs/{job['id']}/history?since=195").get_json()["epochs"]] == [
        196, 197, 198, 199, 200]
    model = api.alice.get(f"/jobs/{job['id']}/model")
    assert model.status_code == 200 and model.data[:2] == b"PK"
    assert model.headers["Content-Disposition"] == 'attachment; filename="xor-fit.npz"'
    r = api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS})
    out = r.get_json()
    assert out["predictions"] == [0, 1, 1, 0]
    assert [round(sum(p), 6) for p in out["probabilities"]] == [1.0] * 4
    assert [max(range(2), key=row.__getitem__) for row in out["probabilities"]] == [0, 1, 1, 0]
    assert problem(api.alice.post(f"/jobs/{job['id']}/cancel"), 409)
    assert api.alice.delete(f"/jobs/{job['id']}").status_code == 204
    assert problem(api.alice.get(f"/jobs/{job['id']}"), 404)


@pytest.mark.parametrize("body, loc, msg", [
    ({"inputs": [[0, 0], [0, "x"]]}, "inputs[1][1]", "'x' is not a number"),
    ({"inputs": [[0, 0], [0, 1, 2]]}, "inputs[1]", "3 values but the model takes 2 features"),
    ({"inputs": [[0, 0], [1, 1], [0]]}, "inputs[2]", "1 value but the model takes 2 features"),
    ({"inputs": [[0, 0], [0, None]]}, "inputs[1][1]", "null is not a number"),
    ({"inputs": [[True, False]]}, "inputs[0][0]", "True is not a number"),
    ({"inputs": []}, "inputs", "a non-empty list of rows is required"),
    ({"rows": [[0, 0]]}, "rows", "unknown field"),
])
def test_predict_input_errors_name_row_and_column(api, body, loc, msg):
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    assert problem(api.alice.post(f"/jobs/{job['id']}/predict", json=body), 422)["errors"] == [{"loc": loc, "msg": msg}]


def test_predict_refuses_nan_and_too_many_rows(sqlite_settings):
    a = make_api(sqlite_settings, max_predict_rows=3)
    job = a.alice.submit(XOR_FIT)
    fake_worker.train(a, job["id"], XOR_FIT)
    r = a.alice.post(f"/jobs/{job['id']}/predict", data='{"inputs": [[0, 0], [NaN, 1]]}',
                     headers={"Content-Type": "application/json"})
    assert problem(r, 422)["errors"] == [{"loc": "inputs[1][0]",
                                          "msg": "nan is not a finite number (NaN and infinity are not allowed)"}]
    r = a.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS})
    assert "limit of 3 rows" in problem(r, 422)["errors"][0]["msg"]


def test_cancel_queued_and_running(api):
    queued = api.alice.submit()
    r = api.alice.post(f"/jobs/{queued['id']}/cancel")
    assert r.status_code == 202 and r.get_json()["status"] == "cancelled"
    assert r.get_json()["error"] == {"code": "cancelled", "message": "cancelled on request"}
    assert problem(api.alice.post(f"/jobs/{queued['id']}/cancel"), 409)
    running = api.alice.submit()
    fake_worker.claim(api, running["id"])
    r = api.alice.post(f"/jobs/{running['id']}/cancel")
    assert r.status_code == 202 and r.get_json()["status"] == "running" and r.get_json()["cancel_requested"] is True
    assert problem(api.alice.delete(f"/jobs/{running['id']}"), 409)
    assert api.alice.delete(f"/jobs/{queued['id']}").status_code == 204


def test_failed_job_reports_its_error_and_non_finite_numbers_as_null(api):
    job = api.alice.submit()
    fake_worker.fail(api, job["id"], {"code": "diverged", "message": "loss became non-finite in epoch 3", "epoch": 3})
    with session_scope(api.sessions) as s:
        s.execute(update(Job).where(Job.id == job["id"]).values(metrics={"loss": float("nan"), "accuracy": 0.5}))
    r = api.alice.get(f"/jobs/{job['id']}")
    assert "NaN" not in r.get_data(as_text=True)
    body = r.get_json()
    assert body["status"] == "failed" and body["error"]["code"] == "diverged" and body["error"]["epoch"] == 3
    assert body["metrics"] == {"loss": None, "accuracy": 0.5}


def test_events_stream_progress_then_the_terminal_status(api):
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    r = api.alice.get(f"/jobs/{job['id']}/events?since=197")
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    events = [block for block in r.get_data(as_text=True).split("\n\n") if "event:" in block]
    assert [e.splitlines()[0] for e in events[:3]] == ["id: 198", "id: 199", "id: 200"]
    assert events[-1].startswith("event: status") and '"status":"succeeded"' in events[-1]
    resumed = api.alice.get(f"/jobs/{job['id']}/events", headers={"Last-Event-ID": "199"}).get_data(as_text=True)
    assert resumed.count("event: progress") == 1
    # The replay of a finished job tags each epoch as made (running); only the status event is final.
    assert all('"status":"running"' in e and "succeeded" not in e for e in events[:-1])


def test_unknown_routes_and_methods_are_problem_json(api):
    assert problem(api.client.get("/api/v1/nope"), 404)["detail"] == "no route /api/v1/nope"
    r = api.client.put("/api/v1/jobs")
    assert "PUT is not allowed" in problem(r, 405)["detail"] and "POST" in r.headers["Allow"]


def test_model_file_name_is_header_safe(api):
    spec = {**XOR_FIT, "name": 'my job/ä"\r\nX-Evil: 1'}
    job = api.alice.submit(spec)
    fake_worker.train(api, job["id"], spec)
    r = api.alice.get(f"/jobs/{job['id']}/model")
    assert r.headers["Content-Disposition"] == 'attachment; filename="my_job_X-Evil_1.npz"'


def test_with_auth_off_everyone_is_the_local_user(sqlite_settings):
    a = make_api(sqlite_settings, auth=False)
    r = a.client.post("/api/v1/jobs", json=xor())
    assert r.status_code == 201
    assert [j["id"] for j in a.client.get("/api/v1/jobs").get_json()["items"]] == [r.get_json()["id"]]


def test_every_request_gives_back_its_concurrency_slot(api):
    from trainyard.api.context import ACTIVE_REQUESTS

    for r in (api.client.get("/api/v1/jobs"), api.alice.get("/jobs/nope"), api.alice.post("/jobs", json=[]),
              api.client.put("/api/v1/jobs"), api.alice.get("/jobs"), api.client.get("/api/v1/health")):
        assert r.status_code in (200, 401, 404, 405, 422)
    job = api.alice.submit()
    api.alice.post(f"/jobs/{job['id']}/cancel")
    api.alice.get(f"/jobs/{job['id']}/events").get_data()  # a stream gives its slot back before it streams
    slots = api.app.extensions["trainyard"].active
    taken = [slots.acquire(blocking=False) for _ in range(ACTIVE_REQUESTS)]
    assert all(taken)
    for _ in taken:
        slots.release()


def test_every_422_about_a_submitted_spec_is_invalid_spec(api_both):
    """dataset.id answered invalid-request and an activation invalid-spec (issue 13 §3): one type for the spec's
    content, whichever check found it."""
    bad = [({"dataset": {"id": "nope"}, "model": {"layers": [{"type": "dense", "units": 1}]}}, "dataset.id"),
           ({**xor(), "model": {"layers": [{"type": "dense", "units": 1, "activation": "swish"}]}},
            "model.layers[0].activation"),
           ({**xor(), "dataset": {"builtin": "xor", "path": "x.csv"}}, "dataset.path"),
           ({**xor(), "training": {"epochs": 10**7}}, "training.epochs"),
           ([1], "")]
    for spec, loc in bad:
        body = problem(api_both.alice.post("/jobs", json=spec), 422)
        assert body["type"] == "urn:trainyard:problem:invalid-spec", (loc, body)
        assert body["errors"][0]["loc"] == loc, body
