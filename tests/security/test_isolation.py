"""One user never sees or touches another's jobs, datasets or sweeps: every route that takes an id answers another user's id
exactly as it answers an id that does not exist (404), and the owner's data is unchanged afterwards.

The routes come from Flask's URL map, so a route added later is covered too.
"""

from __future__ import annotations

import io

from tests.support import fakeworker as fake_worker, hostile
from tests.support.api import XOR_FIT, XOR_INPUTS, problem, xor


CSV = b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n0,0,0\n1,1,0\n"


def snapshot(api, job_ids: list[str], dataset_id: str, sweep_id: str) -> dict:
    """Everything alice can read about her jobs, dataset and sweep."""
    a = api.alice
    out = {"jobs": a.get("/jobs").get_json(), "datasets": a.get("/datasets").get_json(),
           "dataset": a.get(f"/datasets/{dataset_id}").get_json(), "sweep": a.get(f"/sweeps/{sweep_id}").get_json(),
           "trials": a.get(f"/sweeps/{sweep_id}/trials").get_json()}
    for job_id in job_ids:
        out[job_id] = (a.get(f"/jobs/{job_id}").get_json(), a.get(f"/jobs/{job_id}/history").get_json())
    return out


def test_another_users_ids_are_not_found_on_every_route_and_change_nothing(api_both):
    api = api_both
    done = api.alice.submit(XOR_FIT)
    fake_worker.train(api, done["id"], XOR_FIT)
    queued = api.alice.submit(xor(), headers={"Idempotency-Key": "shared-key"})
    dataset = api.alice.post("/datasets", content_type="multipart/form-data", data={
        "name": "private", "format": "csv", "target": "y", "file": (io.BytesIO(CSV), "d.csv")}).get_json()
    model = api.alice.get(f"/jobs/{done['id']}/model").data
    prediction = api.alice.post(f"/jobs/{done['id']}/predict", json={"inputs": XOR_INPUTS}).get_json()
    sweep = api.alice.post("/sweeps", json={"base": xor(), "space": {"model.layers[0].units": {"choice": [2, 3]}},
                                            "objective": {"metric": "loss"}, "sampler": "grid"}).get_json()
    before = snapshot(api, [done["id"], queued["id"]], dataset["id"], sweep["id"])

    rules = [(rule, method) for rule in api.app.url_map.iter_rules() if rule.arguments
             and not rule.endpoint.startswith("ui.")  # the dashboard's pages: tests/ui/test_sessions.py
             for method in sorted(rule.methods - {"OPTIONS"})]
    assert {r.endpoint for r, _ in rules} >= {"jobs.get_job", "jobs.cancel_job", "jobs.delete_job",
                                              "results.get_history", "results.get_events", "results.get_model",
                                              "results.predict", "datasets.get_dataset", "datasets.delete_dataset"}
    missing = "f" * 24
    for rule, method in rules:
        assert rule.arguments <= {"job_id", "dataset_id", "sweep_id"}, f"{rule.rule}: teach this test its parameters"
        for job_id in (done["id"], queued["id"]):
            kw = {"json": {"inputs": XOR_INPUTS}} if method == "POST" else {}
            ids = {"job_id": job_id, "dataset_id": dataset["id"], "sweep_id": sweep["id"]}
            theirs = api.bob.client.open(hostile.url_for_rule(rule, ids), method=method,
                                         headers=api.bob._headers(None), **kw)
            nobody = api.bob.client.open(hostile.url_for_rule(rule, dict.fromkeys(ids, missing)), method=method,
                                         headers=api.bob._headers(None), **kw)
            assert theirs.status_code == nobody.status_code == 404, (method, rule.rule, theirs.status_code)
            if method != "HEAD":
                body, other = problem(theirs, 404), problem(nobody, 404)
                ident = ids[next(iter(rule.arguments))]
                # The same answer as for an id that does not exist: nothing tells bob that alice's exists.
                assert body["detail"].replace(ident, missing) == other["detail"], (body, other)
                assert set(body) == set(other) and body["type"] == other["type"]

    # bob's lists are empty, alice's dataset id and Idempotency-Key mean nothing to him.
    assert api.bob.get("/jobs").get_json()["items"] == [] and api.bob.get("/datasets").get_json()["items"] == []
    body = problem(api.bob.post("/jobs", json=xor(dataset={"id": dataset["id"]})), 422)
    assert body["errors"][0]["loc"] == "dataset.id"
    assert body["errors"][0]["msg"] == f"no dataset with id {dataset['id']!r}"
    mine = api.bob.post("/jobs", json=xor(), headers={"Idempotency-Key": "shared-key"})
    assert mine.status_code == 201 and mine.get_json()["id"] != queued["id"]
    api.bob.post(f"/jobs/{mine.get_json()['id']}/cancel")

    # alice's jobs, history, model, predictions and dataset are exactly as they were.
    after = snapshot(api, [done["id"], queued["id"]], dataset["id"], sweep["id"])
    assert after == before
    assert after[queued["id"]][0]["status"] == "queued" and after[queued["id"]][0]["cancel_requested"] is False
    assert api.alice.get(f"/jobs/{done['id']}/model").data == model
    assert api.alice.post(f"/jobs/{done['id']}/predict", json={"inputs": XOR_INPUTS}).get_json() == prediction
