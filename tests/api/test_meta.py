"""The routes about the service: /openapi.json, /docs, /catalog, /workers, /health, /metrics."""

from __future__ import annotations

import json
import re

import jsonschema_rs
from schemathesis.specs.openapi.definitions import OPENAPI_31

from trainyard.api.app import create_app
from trainyard.core.capabilities import CAPABILITIES
from trainyard.core.datasets.catalog import BUILTINS
from trainyard.core.spec import ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS

from tests.support.api import make_api, problem


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_openapi_document_is_valid_and_lists_every_route(api):
    r = api.client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["openapi"].startswith("3.")
    errors = [e.message for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(doc)]
    assert errors == []
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    routes = {(re.sub(r"<(\w+)>", r"{\1}", rule.rule), method.lower())
              for rule in api.app.url_map.iter_rules() if rule.endpoint != "static"
              and not rule.endpoint.startswith("ui.")  # the dashboard's HTML pages (api.ui) are no API operations
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert routes == documented
    assert schemas["JobSpec"]["properties"]["model"]["$ref"] == "#/components/schemas/ModelSpec"
    assert doc["paths"]["/api/v1/health"]["get"]["security"] == []


def test_docs_page_works_offline(api):
    page = api.client.get("/api/v1/docs").get_data(as_text=True)
    assert "openapi.json" in page and "<script>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from another host


def test_catalog_reads_the_capability_table_vocabulary_and_builtins(api):
    cat = api.alice.get("/catalog").get_json()
    assert set(cat["backends"]) == set(CAPABILITIES)
    assert cat["backends"]["numpy"]["optimizers"] == list(CAPABILITIES["numpy"]["optimizers"])
    assert set(cat["datasets"]) == set(BUILTINS) and cat["datasets"]["moons"]["options"] == ["n_samples", "noise"]
    assert cat["datasets"]["iris"]["n_classes"] == 3
    assert cat["activations"]["leaky_relu"] == {"alpha": 0.01} and set(cat["activations"]) == set(ACTIVATIONS)
    assert cat["initializers"]["normal"] == INITIALIZERS["normal"] and cat["losses"] == list(LOSSES)
    assert cat["optimizers"]["adam"]["epsilon"] == OPTIMIZERS["adam"]["epsilon"]
    assert cat["layers"]["batch_norm"]["momentum"] == {"required": False, "default": 0.99}
    assert cat["layers"]["dense"]["units"]["required"] is True
    assert cat["aliases"]["logistic"] == "sigmoid"
    assert problem(api.client.get("/api/v1/catalog"), 401)


def test_catalog_keeps_each_backends_reasons_and_defaults(api):
    """Issue 11: the catalog dropped the capability table's why_not reasons (a bare list of names) and each
    backend's own defaults."""
    from trainyard.core.capabilities import KERAS_DEFAULTS, SKLEARN_DEFAULTS

    backends = api.alice.get("/catalog").get_json()["backends"]
    assert backends["sklearn"]["why_not"]["dropout"] == "MLPClassifier has no dropout"
    assert backends["sklearn"]["why_not"]["gpu"] == CAPABILITIES["sklearn"]["why_not"]["gpu"]
    assert backends["keras"]["why_not"] == dict(CAPABILITIES["keras"]["why_not"])
    assert backends["sklearn"]["defaults"] == SKLEARN_DEFAULTS and backends["keras"]["defaults"] == KERAS_DEFAULTS
    assert backends["sklearn"]["defaults"] and backends["numpy"]["defaults"] == {}


def test_workers_lists_live_workers(api):
    from trainyard.store.db import session_scope
    from trainyard.store.workers import register_worker

    assert api.alice.get("/workers").get_json() == {"items": []}
    with session_scope(api.sessions) as s:
        register_worker(session=s, name="w1", queues=["cpu"], device="cpu", concurrency=2, hostname="h", pid=7)
    [w] = api.alice.get("/workers").get_json()["items"]
    assert (w["name"], w["queues"], w["concurrency"], w["current_job"]) == ("w1", ["cpu"], 2, None)
    job = api.alice.submit()
    assert api.alice.get(f"/jobs/{job['id']}").get_json()["pending_reason"] == "waiting for a worker on queue cpu"


def test_health_is_200_when_database_and_broker_answer(api_both):
    r = api_both.client.get("/api/v1/health")
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"status": "ok", "checks": {"database": {"ok": True, "detail": "ok"},
                                                         "broker": {"ok": True, "detail": "ok"}}}


def test_health_is_503_when_the_broker_is_down(sqlite_settings):
    a = make_api(sqlite_settings, broker_url="redis://127.0.0.1:1/0")
    body = problem(a.client.get("/api/v1/health"), 503)
    assert body["checks"]["database"]["ok"] is True and body["checks"]["broker"]["ok"] is False
    assert body["detail"].startswith("broker unavailable")
    job = a.alice.submit()  # a publish failure leaves the job queued: never a 500
    assert job["status"] == "queued"


def test_health_is_503_when_the_database_is_down(sqlite_settings):
    settings = sqlite_settings.replace(database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
                                       db_connect_timeout_seconds=1)
    body = problem(create_app(settings).test_client().get("/api/v1/health"), 503)
    assert body["checks"]["database"]["ok"] is False and body["detail"].startswith("database unavailable")


def test_metrics_from_the_apps_own_registry(api, sqlite_settings):
    api.alice.submit(), api.alice.submit()
    text = api.client.get("/api/v1/metrics").get_data(as_text=True)
    assert 'trainyard_jobs{status="queued"} 2.0' in text
    assert 'trainyard_queue_depth{queue="cpu"} 2.0' in text
    assert "trainyard_epochs_per_second 0.0" in text and "trainyard_job_duration_seconds_bucket" in text
    assert 'trainyard_http_requests_total{endpoint="jobs.submit_job",method="POST",status="201"} 2.0' in text
    other = make_api(sqlite_settings, database_url=f"sqlite:///{sqlite_settings.home}/other.db", metrics_token="m3tr1cs")
    assert problem(other.client.get("/api/v1/metrics"), 401)
    r = other.client.get("/api/v1/metrics", headers={"Authorization": "Bearer m3tr1cs"})
    assert r.status_code == 200 and 'trainyard_jobs{status="queued"} 0.0' in r.get_data(as_text=True)


def test_no_bare_nan_in_any_response(api):
    job = api.alice.submit()
    for path in ("/jobs", f"/jobs/{job['id']}", "/catalog", "/workers"):
        json.loads(api.alice.get(path).get_data(as_text=True), parse_constant=lambda c: (_ for _ in ()).throw(
            AssertionError(f"{path}: bare {c}")))


def test_bodies_match_the_documented_models(api):
    """The routes build plain dicts for speed; the OpenAPI models must still describe them exactly (extra=forbid)."""
    import io

    from tests.support.api import XOR_FIT, XOR_INPUTS
    from tests.support.fakeworker import train

    from trainyard.api import schemas

    job = api.alice.submit(XOR_FIT)
    schemas.Job.model_validate(job)
    train(api, job["id"], XOR_FIT)
    schemas.Job.model_validate(api.alice.get(f"/jobs/{job['id']}").get_json())
    schemas.JobList.model_validate(api.alice.get("/jobs").get_json())
    schemas.History.model_validate(api.alice.get(f"/jobs/{job['id']}/history").get_json())
    schemas.PredictResponse.model_validate(
        api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS}).get_json())
    ds = api.alice.post("/datasets", content_type="multipart/form-data", data={
        "name": "d", "format": "csv", "file": (io.BytesIO(b"a,y\n1,0\n2,1\n3,0\n4,1\n"), "d.csv")}).get_json()
    schemas.Dataset.model_validate(ds)
    schemas.DatasetList.model_validate(api.alice.get("/datasets").get_json())
    schemas.Catalog.model_validate(api.alice.get("/catalog").get_json())
    schemas.WorkerList.model_validate(api.alice.get("/workers").get_json())
    schemas.Problem.model_validate(api.alice.get("/jobs/nope").get_json())


def test_job_duration_histogram_is_counted_by_the_database(api_both):
    from tests.support.api import XOR_FIT
    from tests.support.fakeworker import train

    job = api_both.alice.submit(XOR_FIT)
    train(api_both, job["id"], XOR_FIT)
    text = api_both.client.get("/api/v1/metrics").get_data(as_text=True)
    assert 'trainyard_job_duration_seconds_bucket{le="1.0",status="succeeded"} 1.0' in text
    assert 'trainyard_job_duration_seconds_count{status="succeeded"} 1.0' in text
    assert 'trainyard_job_duration_seconds_count{status="failed"} 0.0' in text
    total = float(re.search(r'trainyard_job_duration_seconds_sum\{status="succeeded"\} (\S+)', text).group(1))
    assert 0 < total < 1
    assert 'trainyard_jobs{status="succeeded"} 1.0' in text


def test_the_api_root_sends_a_browser_to_the_docs(api):
    """/api/v1 was a 404 problem ("no route") in the browser; it leads to the docs page, without a token."""
    from trainyard.api.docs import HOME

    r = api.client.get("/api/v1")
    assert r.status_code == 308 and r.headers["Location"].endswith("/api/v1/")
    r = api.client.get("/api/v1/")
    assert r.status_code == 302 and r.headers["Location"] == HOME == "/api/v1/docs"
    page = api.client.get("/api/v1", follow_redirects=True)
    assert page.status_code == 200 and page.mimetype == "text/html" and "trainyard API" in page.get_data(as_text=True)
    doc = api.client.get("/api/v1/openapi.json").get_json()
    assert doc["paths"]["/api/v1/"]["get"]["security"] == []
    assert "Location" in doc["paths"]["/api/v1/"]["get"]["responses"]["302"]["headers"]
