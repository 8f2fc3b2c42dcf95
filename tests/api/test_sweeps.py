"""/sweeps without workers: every 422 names its field, another user's sweep is a 404, and the bodies, counts, best
trial, trial pages, cancel and delete follow the rows (the test plays the worker's part through store.runs)."""

from __future__ import annotations

import copy
import io

import pytest

from trainyard.store.db import session_scope
from trainyard.store.runs import finish_job
from trainyard.worker.controller import step

from tests.support.api import XOR, problem
from tests.support.fakeworker import claim, fail

BASE = {**copy.deepcopy(XOR), "training": {"epochs": 5, "seed": 1, "batch_size": 4}}
SPACE = {"training.optimizer.learning_rate": {"float": [1e-3, 1e-1], "log": True},
         "model.layers[0].units": {"int": [2, 8]}, "model.layers[0].activation": {"choice": ["relu", "tanh"]}}


def sweep(**changes) -> dict:
    return {"name": "xor-lr", "base": copy.deepcopy(BASE), "space": copy.deepcopy(SPACE),
            "objective": {"metric": "loss", "direction": "minimize"}, "sampler": {"name": "random", "seed": 1},
            "trials": 3, "parallel": 2, **changes}


def create(caller, doc=None) -> dict:
    r = caller.post("/sweeps", json=doc or sweep())
    assert r.status_code == 201, r.get_json()
    assert r.headers["Location"] == r.get_json()["links"]["self"]
    return r.get_json()


def trials(caller, sweep_id, **params) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = caller.get(f"/sweeps/{sweep_id}/trials?{query}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def succeed(api, job_id: str, loss: float) -> None:
    attempt = claim(api, job_id)
    with session_scope(api.sessions) as s:
        finish_job(session=s, job_id=job_id, attempt=attempt, status="succeeded", metrics={"loss": loss}, epoch=5)


def advance(api, sweep_id: str):
    return step(settings=api.settings, factory=api.sessions, sweep_id=sweep_id)


def test_create_queues_parallel_trials_that_are_jobs_with_their_parameters(api_both):
    body = create(api_both.alice)
    assert (body["status"], body["trials"], body["parallel"], body["created"]) == ("queued", 3, 2, 2)
    assert body["counts"] == {"queued": 2, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0, "pruned": 0}
    assert body["sampler"] == {"name": "random", "seed": 1} and body["pruner"] == {"name": "none"}
    assert body["objective"] == {"metric": "loss", "direction": "minimize"} and body["best"] is None
    assert {"name", "learning_rate"} <= set(body["base"]["training"]["optimizer"])  # normalised: defaults filled in
    items = trials(api_both.alice, body["id"])["items"]
    assert [t["trial"] for t in items] == [0, 1]
    for t in items:
        job = api_both.alice.get(f"/jobs/{t['job_id']}").get_json()
        assert (job["sweep_id"], job["trial"], job["params"], job["status"]) == (body["id"], t["trial"], t["params"],
                                                                               "queued")
        lr = t["params"]["training.optimizer.learning_rate"]
        assert 1e-3 <= lr <= 1e-1 and job["spec"]["training"]["optimizer"]["learning_rate"] == lr
        assert job["spec"]["model"]["layers"][0]["units"] == t["params"]["model.layers[0].units"]
    listed = api_both.alice.get("/jobs").get_json()["items"]
    assert {(j["sweep_id"], j["trial"]) for j in listed} == {(body["id"], 0), (body["id"], 1)}


def test_finished_trials_start_the_next_and_the_best_one_wins(api_both):
    a = api_both
    body = create(a.alice)
    first = trials(a.alice, body["id"])["items"]
    succeed(a, first[0]["job_id"], 0.5)
    advance(a, body["id"])
    now = a.alice.get(f"/sweeps/{body['id']}").get_json()
    assert now["status"] == "running" and now["created"] == 3 and now["counts"]["queued"] == 2
    assert now["best"] == {"trial": 0, "job_id": first[0]["job_id"], "value": 0.5, "params": first[0]["params"]}
    items = trials(a.alice, body["id"])["items"]
    succeed(a, items[1]["job_id"], 0.25)
    fail(a, items[2]["job_id"], {"code": "diverged", "message": "diverged at epoch 2", "epoch": 2})
    advance(a, body["id"])
    done = a.alice.get(f"/sweeps/{body['id']}").get_json()
    assert (done["status"], done["error"], done["finished_at"] is not None) == ("succeeded", None, True)
    assert done["counts"] == {"queued": 0, "running": 0, "succeeded": 2, "failed": 1, "cancelled": 0, "pruned": 0}
    assert done["best"]["trial"] == 1 and done["best"]["value"] == 0.25
    # by objective, best first, a trial without a value last; one per page, following the cursor
    pages, cursor = [], None
    while True:
        page = trials(a.alice, body["id"], sort="objective", limit=1, **({"cursor": cursor} if cursor else {}))
        pages += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [(t["trial"], t["value"], t["state"]) for t in pages] == [(1, 0.25, "succeeded"), (0, 0.5, "succeeded"),
                                                                     (2, None, "failed")]
    assert pages[2]["error"]["code"] == "diverged"
    assert [t["trial"] for t in trials(a.alice, body["id"], limit=2)["items"]] == [0, 1]
    assert problem(a.alice.post(f"/sweeps/{body['id']}/cancel"), 409)["detail"].endswith("already succeeded")


def test_a_sweep_whose_trials_all_fail_ends_failed_with_the_reason(api):
    body = create(api.alice, sweep(trials=2, parallel=1))
    for _ in range(2):
        (t,) = [t for t in trials(api.alice, body["id"])["items"] if t["state"] == "queued"]
        fail(api, t["job_id"], {"code": "diverged", "message": "the loss became non-finite at epoch 3", "epoch": 3})
        advance(api, body["id"])
    done = api.alice.get(f"/sweeps/{body['id']}").get_json()
    assert done["status"] == "failed" and done["error"]["code"] == "all_trials_failed"
    assert "2 diverged" in done["error"]["message"] and "non-finite at epoch 3" in done["error"]["message"]
    assert done["best"] is None


def test_cancel_cancels_queued_trials_and_delete_removes_the_trials_jobs(api_both):
    a = api_both
    body = create(a.alice)
    running = trials(a.alice, body["id"])["items"][0]
    claim(a, running["job_id"])
    r = a.alice.post(f"/sweeps/{body['id']}/cancel")
    assert r.status_code == 202 and r.get_json()["status"] == "running" and r.get_json()["cancel_requested"]
    assert r.get_json()["counts"]["cancelled"] == 1 and r.get_json()["counts"]["running"] == 1
    job = a.alice.get(f"/jobs/{running['job_id']}").get_json()
    assert job["cancel_requested"] is True
    assert problem(a.alice.delete(f"/sweeps/{body['id']}"), 409)["detail"].endswith("cancel it first")
    with session_scope(a.sessions) as s:  # the worker stops it like any cancel
        finish_job(session=s, job_id=running["job_id"], attempt=1, status="cancelled",
                   error={"code": "cancelled", "message": "cancelled on request"})
    advance(a, body["id"])
    done = a.alice.get(f"/sweeps/{body['id']}").get_json()
    assert (done["status"], done["created"], done["counts"]["cancelled"]) == ("cancelled", 2, 2)
    assert a.alice.delete(f"/sweeps/{body['id']}").status_code == 204
    assert a.alice.get(f"/sweeps/{body['id']}").status_code == 404
    assert a.alice.get(f"/jobs/{running['job_id']}").status_code == 404


def test_a_pruned_trial_is_cancelled_with_code_pruned_not_a_users_cancel(api):
    from trainyard.store.sweeps import prune_trial

    body = create(api.alice, sweep(trials=2, parallel=2))
    first, second = trials(api.alice, body["id"])["items"]
    attempt = claim(api, first["job_id"])
    with session_scope(api.sessions) as s:
        assert prune_trial(session=s, job_id=first["job_id"], epoch=3)
    with session_scope(api.sessions) as s:
        finish_job(session=s, job_id=first["job_id"], attempt=attempt, status="cancelled",
                   error={"code": "cancelled", "message": "cancelled on request"})
    job = api.alice.get(f"/jobs/{first['job_id']}").get_json()
    assert job["status"] == "cancelled" and job["error"]["code"] == "pruned" and job["error"]["epoch"] == 3
    states = {t["trial"]: t["state"] for t in trials(api.alice, body["id"])["items"]}
    assert states == {0: "pruned", 1: "queued"}
    assert api.alice.get(f"/sweeps/{body['id']}").get_json()["counts"]["pruned"] == 1


def test_successive_halving_judges_each_rung_once_when_the_trials_worker_asks(api):
    """A trial's worker asks (judge_trial) at each rung epoch; a controller's pass never judges a rung pruner's trial
    (a live study judges a rung once), and a trial already asked to stop is told to stop."""
    from tests.support.fakeworker import epochs

    from trainyard.worker.controller import judge_trial

    body = create(api.alice, sweep(trials=2, parallel=2, pruner={"name": "successive_halving", "min_epochs": 2,
                                                                 "reduction_factor": 2}))
    first, second = (t["job_id"] for t in trials(api.alice, body["id"])["items"])
    a0, a1 = claim(api, first), claim(api, second)

    def judge(trial: int) -> bool:
        return judge_trial(factory=api.sessions, sweep_id=body["id"], trial=trial)

    epochs(api, first, a0, [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.8}])
    assert judge(0) is False  # alone at the rung of epoch 2: kept
    epochs(api, second, a1, [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.3}])
    assert judge(1) is False  # the better of the two there
    epochs(api, first, a0, [{"epoch": 3, "loss": 0.7}])
    assert advance(api, body["id"]).pruned == []  # trial 0 passed rung 2: not judged again, by a pass or at epoch 3
    epochs(api, second, a1, [{"epoch": 3, "loss": 0.2}, {"epoch": 4, "loss": 0.1}])
    assert judge(1) is False
    epochs(api, first, a0, [{"epoch": 4, "loss": 0.65}])
    assert judge(0) is True  # the worse of the two at the rung of epoch 4
    job = api.alice.get(f"/jobs/{first}").get_json()
    assert job["cancel_requested"] is True
    assert {t["trial"]: t["state"] for t in trials(api.alice, body["id"])["items"]} == {0: "running", 1: "running"}
    assert judge(0) is True  # already asked to stop: it stops at once
    with session_scope(api.sessions) as s:
        finish_job(session=s, job_id=first, attempt=a0, status="cancelled", epoch=4,
                   error={"code": "cancelled", "message": "cancelled on request"})
    assert api.alice.get(f"/jobs/{first}").get_json()["error"]["epoch"] == 4


def test_a_rung_whose_judgement_failed_is_judged_at_the_next_epoch_boundary(api_both, monkeypatch):
    """judge_trial raises at a rung (a database blip): the trial's worker (JobReporter) asks again about that rung,
    with the history cut there, at its next epoch boundary, and the trial is pruned after the rung (no pass judges
    a rung pruner's trial)."""
    from sqlalchemy.exc import OperationalError

    from tests.support.fakeworker import epochs
    from trainyard.store.models import Sweep
    from trainyard.worker import controller
    from trainyard.worker.runner import JobReporter

    api = api_both
    body = create(api.alice, sweep(trials=2, parallel=2, pruner={"name": "successive_halving", "min_epochs": 2,
                                                                 "reduction_factor": 2}))
    first, second = (t["job_id"] for t in trials(api.alice, body["id"])["items"])
    a0, a1 = claim(api, first), claim(api, second)
    epochs(api, second, a1, [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.3}])
    assert controller.judge_trial(factory=api.sessions, sweep_id=body["id"], trial=1) is False  # alone at rung 2
    with session_scope(api.sessions) as s:
        pruner = s.get(Sweep, body["id"]).request["pruner"]

    real, asked = controller.judge_trial, []

    def blip_once(**kw):
        asked.append(kw.get("epoch"))
        if len(asked) == 1:
            raise OperationalError("SELECT", {}, ConnectionError("server closed the connection unexpectedly"))
        return real(**kw)

    monkeypatch.setattr(controller, "judge_trial", blip_once)
    reporter = JobReporter(settings=api.settings, factory=api.sessions, job_id=first, attempt=a0,
                           on_hard_timeout=None, trial=(body["id"], 0, pruner))
    reporter.on_epoch({"epoch": 1, "loss": 0.9})
    reporter.on_epoch({"epoch": 2, "loss": 0.8})  # worse than trial 1 at rung 2: condemned there, but not judged
    assert not reporter.cancelled.is_set() and len(asked) == 1
    reporter.on_epoch({"epoch": 3, "loss": 0.1})  # (judged after epoch 3 instead, it would not be judged at all)
    assert reporter.cancelled.is_set()
    assert asked == [2, 2]  # the rung, asked again
    assert api.alice.get(f"/jobs/{first}").get_json()["cancel_requested"] is True
    with session_scope(api.sessions) as s:
        finish_job(session=s, job_id=first, attempt=a0, status="cancelled", epoch=3,
                   error={"code": "cancelled", "message": "cancelled on request"})
    job = api.alice.get(f"/jobs/{first}").get_json()
    assert (job["error"]["code"], job["error"]["epoch"]) == ("pruned", 2)  # pruned after the rung that condemned it
    assert [r["epoch"] for r in api.alice.get(f"/jobs/{first}/history").get_json()["epochs"]] == [1, 2, 3]
    assert {t["trial"]: t["state"] for t in trials(api.alice, body["id"])["items"]} == {0: "pruned", 1: "running"}


def test_another_users_sweep_is_not_found(api_both):
    body = create(api_both.alice)
    sid = body["id"]
    for method, path in [("get", f"/sweeps/{sid}"), ("get", f"/sweeps/{sid}/trials"), ("get", f"/sweeps/{sid}/events"),
                         ("post", f"/sweeps/{sid}/cancel"), ("delete", f"/sweeps/{sid}")]:
        problem(getattr(api_both.bob, method)(path), 404)
    assert api_both.bob.get("/sweeps").get_json() == {"items": [], "next_cursor": None}
    assert [s["id"] for s in api_both.alice.get("/sweeps").get_json()["items"]] == [sid]
    assert api_both.alice.get(f"/sweeps/{sid}").get_json()["status"] == "queued"


def test_list_is_newest_first_and_paged(api):
    ids = [create(api.alice, sweep(trials=1, parallel=1))["id"] for _ in range(3)]
    first = api.alice.get("/sweeps?limit=2").get_json()
    second = api.alice.get(f"/sweeps?limit=2&cursor={first['next_cursor']}").get_json()
    assert [s["id"] for s in first["items"] + second["items"]] == ids[::-1] and second["next_cursor"] is None
    assert "base" not in first["items"][0]
    assert [s["id"] for s in api.alice.get("/sweeps?status=queued").get_json()["items"]] == ids[::-1]
    assert api.alice.get("/sweeps?status=succeeded").get_json()["items"] == []
    problem(api.alice.get("/sweeps?status=done"), 422)
    problem(api.alice.get(f"/sweeps/{ids[0]}/trials?sort=value"), 422)
    problem(api.alice.get(f"/sweeps/{ids[0]}/trials?cursor=nonsense"), 422)


def test_events_stream_the_trials_and_end_with_the_finished_sweep(api):
    body = create(api.alice, sweep(trials=1, parallel=1))
    (t,) = trials(api.alice, body["id"])["items"]
    succeed(api, t["job_id"], 0.125)
    advance(api, body["id"])
    text = api.alice.get(f"/sweeps/{body['id']}/events").get_data(as_text=True)
    assert "event: trial" in text and '"value": 0.125' in text.replace('"value":0.125', '"value": 0.125')
    assert text.rstrip().splitlines()[-2] == "event: sweep" and '"status":"succeeded"' in text.replace(" ", "")


# --- every 422 names its field, and nothing is queued -------------------------------------------------------------

@pytest.mark.parametrize("changes, loc, msg", [
    ({"space": {"model.layers[9].units": {"int": [1, 4]}}}, 'space["model.layers[9].units"]',
     "the spec has no model.layers[9]: model.layers has 2 items"),
    ({"space": {"training.foo": {"int": [1, 4]}}}, 'space["training.foo"]', "unknown field 'foo' in training"),
    ({"space": {"model.layers[0].units": {"int": [8, 2]}}}, 'space["model.layers[0].units"].int', "less than high"),
    ({"space": {"training.optimizer.learning_rate": {"float": [0, 0.1], "log": True}}},
     'space["training.optimizer.learning_rate"].float', "needs low > 0"),
    ({"space": {"model.layers[0].activation": {"choice": []}}}, 'space["model.layers[0].activation"].choice',
     "non-empty"),
    ({"sampler": {"name": "grid"}, "space": {"model.layers[0].units": {"int": [1, 200]},
                                             "training.batch_size": {"int": [1, 100]}}},
     "space", "the grid has 20,000 points; the limit is 10,000 (max_sweep_grid_points)"),
    ({"objective": {"metric": "val_accuracy"}}, "objective.metric", "do not report 'val_accuracy'"),
    ({"objective": {"metric": "test_loss"}, "pruner": {"name": "median"},
      "base": {**copy.deepcopy(BASE), "dataset": {"builtin": "moons"}}}, "objective.metric", "only at the end"),
    ({"space": {"model.layers[0].units": {"int": [0, 4]}}}, 'space["model.layers[0].units"]',
     "at 0 the trial's spec is invalid: model.layers[0].units"),
    ({"space": {"model.layers[0].activation": {"choice": ["relu", "swish"]}}},
     'space["model.layers[0].activation"]', "at 'swish' the trial's spec is invalid"),
    ({"space": {"model.layers[1].units": {"int": [1, 1]}}}, 'space["model.layers[1].units"].int', "less than high"),
    ({"base": {**copy.deepcopy(BASE), "epochs": 3}}, "base.epochs", "unknown field"),
    ({"trials": 0}, "trials", "from 1 to 1000"),
])
def test_invalid_sweeps_are_422_naming_the_field_and_queue_nothing(api, changes, loc, msg):
    body = problem(api.alice.post("/sweeps", json=sweep(**changes)), 422)
    assert any(e["loc"] == loc and msg in e["msg"] for e in body["errors"]), body["errors"]
    assert api.alice.get("/jobs").get_json()["items"] == [] and api.alice.get("/sweeps").get_json()["items"] == []


def test_a_space_whose_high_corner_exceeds_a_limit_is_refused(api):
    limited = api.settings.replace(max_parameters=1000)
    from tests.support.api import make_api

    small = make_api(limited)
    try:
        body = problem(small.alice.post("/sweeps", json=sweep(space={"model.layers[0].units": {"int": [2, 500]}})),
                       422)
        assert any(e["loc"] == 'space["model.layers[0].units"]' and "at 500" in e["msg"] for e in body["errors"])
    finally:
        small.engine.dispose()


def test_a_trial_whose_upload_was_deleted_is_recorded_failed_and_the_sweep_goes_on(api):
    csv = b"a,b,y\n" + b"".join(b"%d,%d,%d\n" % (a, b, a ^ b) for a in (0, 1) for b in (0, 1) for _ in range(5))
    r = api.alice.post("/datasets", data={"file": (io.BytesIO(csv), "xor.csv"), "name": "xor", "target": "y",
                                          "format": "csv"}, content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    base = {**copy.deepcopy(BASE), "dataset": {"id": r.get_json()["id"], "test_split": 0}}
    body = create(api.alice, sweep(base=base, trials=2, parallel=1))
    (first,) = trials(api.alice, body["id"])["items"]
    succeed(api, first["job_id"], 0.5)  # no step yet: nothing queued uses the upload now
    assert api.alice.delete(f"/datasets/{r.get_json()['id']}").status_code == 204
    advance(api, body["id"])
    second = trials(api.alice, body["id"])["items"][1]
    assert second["state"] == "failed" and second["error"]["code"] == "dataset_error"
    assert api.alice.get(f"/sweeps/{body['id']}").get_json()["status"] == "succeeded"


def test_a_sampler_that_fails_ends_the_sweep_failed_with_its_reason(api, monkeypatch):
    import trainyard.worker.controller as controller

    body = create(api.alice, sweep(trials=3, parallel=1))
    (first,) = trials(api.alice, body["id"])["items"]
    succeed(api, first["job_id"], 0.5)

    def broken(*_args, **_kw):
        raise ValueError("no such distribution")

    monkeypatch.setattr(controller, "next_params", broken)
    advance(api, body["id"])
    done = api.alice.get(f"/sweeps/{body['id']}").get_json()
    assert done["status"] == "failed" and done["created"] == 1 and done["error"] == {
        "code": "sampler_error", "message": "the sampler failed: ValueError: no such distribution"}


def test_trials_wait_while_their_owner_is_at_max_queued_per_user(sqlite_settings):
    from tests.support.api import make_api

    api = make_api(sqlite_settings, max_queued_per_user=1)
    try:
        body = create(api.alice, sweep(trials=3, parallel=3))
        assert (body["created"], body["counts"]["queued"]) == (1, 1)  # parallel 3, but one queued job is the limit
        (first,) = trials(api.alice, body["id"])["items"]
        claim(api, first["job_id"])  # running: no longer queued
        advance(api, body["id"])
        assert api.alice.get(f"/sweeps/{body['id']}").get_json()["created"] == 2
    finally:
        api.engine.dispose()


def test_a_retried_create_with_the_same_idempotency_key_returns_the_first_sweep(api_both):
    a = api_both
    doc = sweep(sampler={"name": "random"})  # the seed is drawn: a retry must not draw another
    first = a.alice.post("/sweeps", json=doc, headers={"Idempotency-Key": "sweep-1"})
    again = a.alice.post("/sweeps", json=doc, headers={"Idempotency-Key": "sweep-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"] and again.headers["Location"] == first.headers["Location"]
    assert again.get_json()["sampler"] == first.get_json()["sampler"] and again.get_json()["created"] == 2
    assert len(a.alice.get("/sweeps").get_json()["items"]) == 1 and len(a.alice.get("/jobs").get_json()["items"]) == 2
    other = problem(a.alice.post("/sweeps", json=sweep(trials=2), headers={"Idempotency-Key": "sweep-1"}), 422)
    assert other["errors"] == [{"loc": "Idempotency-Key", "msg": "already used for a different request"}]
    assert a.bob.post("/sweeps", json=doc, headers={"Idempotency-Key": "sweep-1"}).status_code == 201  # his own
    assert problem(a.alice.post("/sweeps", json=doc, headers={"Idempotency-Key": "x" * 201}), 422)["errors"][0][
        "loc"] == "Idempotency-Key"
