"""GET /metrics in one process (tests/contract/test_metrics_live.py has gunicorn's several): job counters that
never go down when jobs are deleted, failures by code, queue wait, attempts and requeues, live and busy workers,
and one Content-Type a strict parser accepts — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from trainyard.store.db import session_scope
from trainyard.store.models import Job, utcnow
from trainyard.store.runs import requeue_expired_jobs
from trainyard.store.workers import register_worker

from tests.support.api import XOR_FIT
from tests.support.fakeworker import claim, fail, train

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,"
                     "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")


def seeded(seed: int) -> dict:
    return {**XOR_FIT, "training": {**XOR_FIT["training"], "seed": seed}}


def samples(api, accept: str | None = None) -> dict[tuple, float]:
    """(sample name, sorted labels) → value, parsed strictly (prometheus_client raises on anything malformed)."""
    r = api.client.get("/api/v1/metrics", headers={"Accept": accept} if accept else {})
    assert r.status_code == 200
    parse = openmetrics_families if accept else text_string_to_metric_families
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parse(r.get_data(as_text=True)) for s in family.samples}


def value(found: dict, name: str, **labels) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def test_job_counters_keep_deleted_jobs_and_count_failures_waits_attempts_and_requeues(api_both):
    api = api_both
    ok = api.alice.submit(XOR_FIT)["id"]
    train(api, ok, XOR_FIT)
    bad = api.alice.submit(seeded(4))["id"]
    fail(api, bad, {"code": "diverged", "message": "loss became non-finite in epoch 3", "epoch": 3})
    # A job whose worker was lost once: its lease expires, the reconciler requeues it, the next attempt succeeds.
    retried = api.alice.submit(seeded(5))["id"]
    claim(api, retried)
    with session_scope(api.sessions) as s:
        s.execute(update(Job).where(Job.id == retried).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        requeue_expired_jobs(session=s, max_attempts=3)
    train(api, retried, seeded(5))

    before = samples(api)
    assert value(before, "trainyard_jobs_finished_total", status="succeeded", backend="numpy", queue="cpu") == 2
    assert value(before, "trainyard_jobs_finished_total", status="failed", backend="numpy", queue="cpu") == 1
    assert value(before, "trainyard_job_failures_total", code="diverged") == 1
    assert value(before, "trainyard_job_failures_total", code="timeout") == 0
    assert value(before, "trainyard_job_attempts_total") == 4 and value(before, "trainyard_job_requeues_total") == 1
    assert value(before, "trainyard_job_duration_seconds_count", status="succeeded") == 2
    assert value(before, "trainyard_job_queue_wait_seconds_count", queue="cpu") == 3
    assert value(before, "trainyard_job_queue_wait_seconds_bucket", queue="cpu", le="+Inf") == 3

    for job in (ok, bad, retried):
        assert api.alice.delete(f"/jobs/{job}").status_code == 204
    after = samples(api)
    assert value(after, "trainyard_jobs", status="succeeded") == 0  # a gauge: what is there now
    counters = [k for k in before if k[0].endswith(("_total", "_count", "_sum", "_bucket")) and "http" not in k[0]]
    assert len(counters) > 50
    assert {k: after[k] for k in counters} == {k: before[k] for k in counters}  # not one went down


def test_a_delete_that_rolls_back_retires_nothing(api_both):
    api = api_both
    job = api.alice.submit(XOR_FIT)["id"]
    assert api.alice.delete(f"/jobs/{job}").status_code == 409  # queued: refused, nothing deleted
    train(api, job, XOR_FIT)
    assert value(samples(api), "trainyard_jobs_finished_total", status="succeeded", backend="numpy", queue="cpu") == 1


def test_live_and_busy_workers_per_queue(api_both):
    api = api_both
    with session_scope(api.sessions) as s:
        for name in ("cpu-a", "cpu-b"):
            register_worker(session=s, name=name, queues=["cpu"], device="cpu", concurrency=1, hostname="h", pid=1)
        register_worker(session=s, name="gone", queues=["gpu"], device="gpu", concurrency=1, hostname="h", pid=2)
        s.execute(update(Job.__table__.metadata.tables["workers"]).where(
            Job.__table__.metadata.tables["workers"].c.name == "gone").values(last_seen=utcnow() - timedelta(hours=1)))
    job = api.alice.submit(XOR_FIT)["id"]
    claim(api, job, worker="cpu-a")
    found = samples(api)
    assert value(found, "trainyard_workers", queue="cpu") == 2 and value(found, "trainyard_workers", queue="gpu") == 0
    assert value(found, "trainyard_workers_busy", queue="cpu") == 1


def test_one_content_type_with_one_charset_for_each_format(api):
    plain = api.client.get("/api/v1/metrics")
    assert plain.headers.getlist("Content-Type") == ["text/plain; version=0.0.4; charset=utf-8"]
    om = api.client.get("/api/v1/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    assert om.headers.getlist("Content-Type") == [
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"]
    assert om.get_data(as_text=True).endswith("# EOF\n")
    assert value(samples(api, PROMETHEUS_ACCEPT), "trainyard_job_requeues_total") == 0


def test_a_deleted_job_whose_blob_is_shared_keeps_its_part(api_both):
    """Deleting a job whose model another job shares rolls a savepoint back (the blob stays); the delete itself
    commits, so its part of the counters must be kept (it was lost when any rollback cleared it)."""
    api = api_both
    first = api.alice.submit(XOR_FIT)["id"]
    train(api, first, XOR_FIT)
    second = api.alice.submit(seeded(3))  # the same spec: it reuses the first's results and model blob
    assert second["status"] == "succeeded" and second["reused_from"] == first
    before = samples(api)
    assert api.alice.delete(f"/jobs/{first}").status_code == 204
    after = samples(api)
    counters = [k for k in before if k[0].endswith(("_total", "_count", "_sum", "_bucket")) and "http" not in k[0]]
    assert {k: after[k] for k in counters} == {k: before[k] for k in counters}
