"""Pins over the API, and what a purged job answers: 410 Gone with a clear problem for its history, model and
predict (never a 500 or an empty list), while the job, its metrics and confusion matrices stay (both databases)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from trainyard.api import schemas
from trainyard.store.db import session_scope
from trainyard.store.gc import run_gc
from trainyard.store.models import Job, utcnow

from tests.support.api import XOR_FIT, XOR_INPUTS, problem
from tests.support.fakeworker import train


def age(api, job_id: str, days: float) -> None:
    with session_scope(api.sessions) as s:
        s.execute(update(Job).where(Job.id == job_id).values(finished_at=utcnow() - timedelta(days=days)))


def gc(api):
    return run_gc(settings=api.settings.replace(retention_days=30.0, gc_grace_seconds=0.0), factory=api.sessions)


def test_pin_and_unpin_a_job(api_both):
    job = api_both.alice.submit()
    r = api_both.alice.post(f"/jobs/{job['id']}/pin")
    assert r.status_code == 200 and r.get_json()["pinned"] is True
    schemas.Job.model_validate(r.get_json())
    assert job["pinned"] is False and job["purged"] is None and job["links"]["pin"] == f"/api/v1/jobs/{job['id']}/pin"
    assert api_both.alice.post(f"/jobs/{job['id']}/pin").get_json()["pinned"] is True  # twice: still pinned
    assert api_both.alice.get(f"/jobs/{job['id']}").get_json()["pinned"] is True
    problem(api_both.bob.post(f"/jobs/{job['id']}/pin"), 404)  # another user's job
    problem(api_both.bob.delete(f"/jobs/{job['id']}/pin"), 404)
    problem(api_both.alice.post("/jobs/nope/pin"), 404)
    r = api_both.alice.delete(f"/jobs/{job['id']}/pin")
    assert r.status_code == 200 and r.get_json()["pinned"] is False


def test_a_purged_job_answers_410_for_history_model_and_predict(api_both):
    api = api_both
    job = api.alice.submit(XOR_FIT)
    other = {**XOR_FIT, "name": "kept", "training": {**XOR_FIT["training"], "seed": 4}}  # a model of its own
    kept = api.alice.submit(other)
    train(api, job["id"], XOR_FIT)
    train(api, kept["id"], other)
    assert api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS}).status_code == 200  # cached
    api.alice.post(f"/jobs/{kept['id']}/pin")
    for j in (job, kept):
        age(api, j["id"], 31)

    report = gc(api)
    assert [j.id for j in report.jobs] == [job["id"]] and report.blobs == 1 and report.blob_bytes > 0

    body = api.alice.get(f"/jobs/{job['id']}").get_json()
    schemas.Job.model_validate(body)
    assert body["status"] == "succeeded" and body["metrics"]["accuracy"] == 1.0
    assert body["purged"]["removed"] == ["history", "model"] and body["purged"]["at"].endswith("Z")
    for r, part in ((api.alice.get(f"/jobs/{job['id']}/history"), "history"),
                    (api.alice.get(f"/jobs/{job['id']}/model"), "model"),
                    (api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS}), "model")):
        p = problem(r, 410)
        assert p["type"] == "urn:trainyard:problem:purged"
        assert f"the {part} of job {job['id']} was removed on" in p["detail"] and "retention" in p["detail"]
    assert api.alice.get(f"/jobs/{job['id']}/confusion-matrix?split=train").status_code == 200
    problem(api.bob.get(f"/jobs/{job['id']}/history"), 404)  # still nobody else's
    assert job["id"] in [j["id"] for j in api.alice.get("/jobs").get_json()["items"]]

    assert api.alice.get(f"/jobs/{kept['id']}").get_json()["purged"] is None
    assert api.alice.get(f"/jobs/{kept['id']}/model").status_code == 200
    assert len(api.alice.get(f"/jobs/{kept['id']}/history").get_json()["epochs"]) == 200
    # pinning a purged job keeps what is left and brings nothing back
    r = api.alice.post(f"/jobs/{job['id']}/pin")
    assert r.get_json()["pinned"] is True and r.get_json()["purged"]["removed"] == ["history", "model"]
    assert api.alice.delete(f"/jobs/{job['id']}").status_code == 204  # and a purged job can still be deleted


def test_a_sweep_keeps_its_trials_while_it_runs_or_is_pinned(api_both):
    from tests.api.test_sweeps import advance, create, sweep, trials

    api = api_both
    body = create(api.alice, sweep(trials=2, parallel=2))
    ids = [t["job_id"] for t in trials(api.alice, body["id"])["items"]]
    for job_id in ids:
        train(api, job_id, api.alice.get(f"/jobs/{job_id}").get_json()["spec"])
        age(api, job_id, 31)
    assert gc(api).jobs == []  # the sweep has not finished: its pruner may still read these trials' histories

    r = api.alice.post(f"/sweeps/{body['id']}/pin")
    assert r.status_code == 200 and r.get_json()["pinned"] is True and r.get_json()["id"] == body["id"]
    problem(api.bob.post(f"/sweeps/{body['id']}/pin"), 404)
    problem(api.alice.delete("/sweeps/nope/pin"), 404)
    advance(api, body["id"])
    assert api.alice.get(f"/sweeps/{body['id']}").get_json()["status"] == "succeeded"
    assert gc(api).jobs == []  # pinned

    r = api.alice.delete(f"/sweeps/{body['id']}/pin")
    assert r.status_code == 200 and r.get_json()["pinned"] is False
    assert sorted(j.id for j in gc(api).jobs) == sorted(ids)
    for job_id in ids:
        assert problem(api.alice.get(f"/jobs/{job_id}/history"), 410)["type"].endswith(":purged")
    assert api.alice.get(f"/sweeps/{body['id']}").get_json()["best"] is not None  # metrics stay


def test_job_summaries_say_pinned_and_purged(api_both):
    job = api_both.alice.submit(XOR_FIT)
    other = api_both.alice.submit({**XOR_FIT, "name": "other"})
    train(api_both, job["id"], XOR_FIT)
    api_both.alice.post(f"/jobs/{other['id']}/pin")
    age(api_both, job["id"], 31)
    gc(api_both)
    listed = api_both.alice.get("/jobs").get_json()
    schemas.JobList.model_validate(listed)
    by_id = {j["id"]: j for j in listed["items"]}
    assert (by_id[job["id"]]["pinned"], by_id[job["id"]]["purged"]["removed"]) == (False, ["history", "model"])
    assert (by_id[other["id"]]["pinned"], by_id[other["id"]]["purged"]) == (True, None)
