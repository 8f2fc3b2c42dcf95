"""Every field the API returns is declared in its OpenAPI document (issue 13 §2).

The test walks real responses of every operation the document lists — a trained job, a job that diverged, a
running one on a registered worker seen by an operator, an upload, and whatever a creating operation's example
makes (its links name the ids) — and validates each body against the document made strict: an object schema
that lists properties allows no others. A field a route returns but the document does not declare (as
`WorkerOut.pid` or `JobErrorOut.epoch` were) fails it, and so does an operation this test could not reach with
a success (or its redirect).
"""

from __future__ import annotations

import copy
import io
import json

import jsonschema_rs
import pytest

from trainyard.api.openapi import openapi_document
from trainyard.store.db import session_scope
from trainyard.store.workers import register_worker

from tests.support.api import XOR_FIT, XOR_INPUTS, make_api
from tests.support.fakeworker import claim, epochs, fail, train

CSV = b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"


def strict(node):
    """The schema with `additionalProperties: false` wherever an object lists its properties and allows more."""
    if isinstance(node, list):
        return [strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items()}
    if "properties" in out and out.get("additionalProperties", True) is True:
        out["additionalProperties"] = False
    return out


def validator(doc: dict, schema: dict):
    return jsonschema_rs.validator_for({"components": strict(doc["components"]), **strict(schema)})


def seeded(seed: int) -> dict:
    """XOR_FIT with another seed (an identical spec would reuse the trained job's results)."""
    return {**XOR_FIT, "training": {**XOR_FIT["training"], "seed": seed}}


@pytest.fixture
def world(sqlite_settings):
    """alice (an operator) with a trained job, a diverged one, a running one on a live worker, and an upload."""
    api = make_api(sqlite_settings, operator_users="alice")
    trained = api.alice.submit(XOR_FIT)["id"]
    train(api, trained, XOR_FIT)
    diverged = api.alice.submit(seeded(4))["id"]
    fail(api, diverged, {"code": "diverged", "message": "loss became non-finite in epoch 3", "epoch": 3})
    running = api.alice.submit(seeded(5))["id"]
    with session_scope(api.sessions) as s:
        register_worker(session=s, name="cpu-1", queues=["cpu"], device="cpu", concurrency=1, hostname="h", pid=7)
    attempt = claim(api, running, worker="cpu-1")
    epochs(api, running, attempt, [{"epoch": 1, "loss": 0.5, "accuracy": 0.5, "time": 0.01}])
    dataset = api.alice.post("/datasets", content_type="multipart/form-data", data={
        "name": "d", "format": "csv", "target": "y", "file": (io.BytesIO(CSV), "d.csv")}).get_json()["id"]
    yield api, {"job_id": trained, "dataset_id": dataset, "diverged": diverged, "running": running}
    api.engine.dispose()


def _send(api, method: str, path: str, op: dict, body=None):
    """The operation's request: its example body (a multipart form for uploads), alice's token."""
    content = op.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        form = dict(body or content["multipart/form-data"].get("example", {}))
        form["file"] = (io.BytesIO(CSV), "d.csv")
        form["target"] = "y"
        return api.alice.client.open(path, method=method.upper(), headers=api.alice._headers(None),
                                     content_type="multipart/form-data", data=form)
    if "application/json" in content:
        body = body if body is not None else content["application/json"].get("example")
    return api.alice.client.open(path, method=method.upper(), headers=api.alice._headers(None), json=body)


def _check(doc, path, method, op, r) -> list[str]:
    declared = op["responses"].get(str(r.status_code))
    if declared is None:
        return [f"{method.upper()} {path}: status {r.status_code} is not declared"]
    if r.status_code == 204 or "content" not in declared:
        return []
    media = r.mimetype
    assert media in declared["content"], f"{method.upper()} {path}: {media} not declared for {r.status_code}"
    schema = declared["content"][media].get("schema")
    if schema is None or not media.endswith("json"):
        return []
    v = validator(doc, schema)
    return [f"{method.upper()} {path} ({r.status_code}): {e.message} at {list(e.instance_path)}"
            for e in v.iter_errors(r.get_json())]


def test_every_returned_field_is_declared(world):
    api, ids = world
    doc = openapi_document()
    problems, reached = [], set()
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    # Operations that create a resource first (their links say which parameter its id fills), deletes last.
    # (A sub-resource's delete before its resource's.)
    ops.sort(key=lambda o: (o[1] != "post" or "{" in o[0], o[1] == "delete", -len(o[0]) if o[1] == "delete" else 0))
    extra_bodies = {"post_jobs_job_id_predict": {"inputs": XOR_INPUTS}}
    queries = {"get_jobs_job_id_confusion-matrix": "?split=train"}  # the XOR gate has no test split
    for path, method, op in ops:
        params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        unknown = params - set(ids)
        assert not unknown, f"{method.upper()} {path}: teach this test where a real {unknown} comes from"
        # A job's routes are asked about the trained job, the diverged one and the running one (but deleting).
        variants = [dict(ids)]
        if "job_id" in params and method != "delete":
            variants += [{**ids, "job_id": ids["diverged"]}, {**ids, "job_id": ids["running"]}]
        for values in variants:
            if path.endswith("/events") and values["job_id"] == ids["running"]:
                continue  # a running job's stream ends only when it does
            url = path.format(**values) + queries.get(op["operationId"], "")
            r = _send(api, method, url, op, extra_bodies.get(op["operationId"]))
            problems += _check(doc, path, method, op, r)
            if 200 <= r.status_code < 400:  # a success, or the redirect the operation is
                reached.add((path, method))
                for response in op["responses"].values():  # the created resource's id, by the document's links
                    for link in response.get("links", {}).values():
                        for name in link["parameters"]:
                            if name not in ids and r.is_json and "id" in (r.get_json() or {}):
                                ids[name] = r.get_json()["id"]
    assert problems == [], "\n".join(problems)
    assert {(path, method) for path, method, _ in ops} - reached == set()


def test_strictness_catches_an_undeclared_field():
    """The check itself: a body with one field the document does not declare fails it."""
    doc = copy.deepcopy(openapi_document())
    schema = {"$ref": "#/components/schemas/WorkerOut"}
    body = {"name": "w", "queues": ["cpu"], "device": "cpu", "concurrency": 1, "current_job": None,
            "current_jobs": [], "started_at": None, "last_seen": None}
    assert validator(doc, schema).is_valid(body)
    assert not validator(doc, schema).is_valid({**body, "undeclared": 1})
    assert json.dumps(strict({"properties": {}, "additionalProperties": True})) == \
        '{"properties": {}, "additionalProperties": false}'
