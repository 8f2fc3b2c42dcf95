"""Reuse of identical work (store.reuse): with a real worker, on SQLite + filesystem broker and PostgreSQL + Redis."""

from __future__ import annotations

import contextlib
import io

import pytest
from sqlalchemy import update

import trainyard.api.jobs
from trainyard.core.provenance import backend_versions
from trainyard.core.validate import validate_spec
from trainyard.core.job import train_job
from trainyard.store.db import session_scope
from trainyard.store.models import Artifact, Blob, HistoryChunk, Job, utcnow

from tests.support.api import XOR_FIT, XOR_INPUTS, make_api
from tests.support.fakeworker import train
from tests.support.processes import start_worker, stop_process, wait_for

# A labelled CSV whose class is `a XOR b`, 3 copies of the truth table; ANOTHER differs in one row's label.
CSV = "a,b,label\n" + "".join(f"{a},{b},{int(a != b)}\n" for a, b in [(0, 0), (0, 1), (1, 0), (1, 1)] * 3)
ANOTHER = CSV.replace("1,1,0\n", "1,1,1\n", 1)
DIVERGES = {"name": "diverges", "dataset": {"builtin": "diabetes"},
            "model": {"layers": [{"type": "dense", "units": 1}]},
            "training": {"epochs": 50, "seed": 1, "optimizer": {"name": "sgd", "learning_rate": 1000.0}}}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request, tmp_path_factory, fresh_postgres, fast_timings):
    """An app and one real worker, once per database (started once for the module)."""
    from trainyard.store.settings import Settings

    home = tmp_path_factory.mktemp(f"reuse-{request.param}") / "home"
    if request.param == "sqlite":
        context = contextlib.nullcontext(Settings(home=home, **fast_timings))
    else:
        context = fresh_postgres(home)
    with context as settings:
        app = make_api(settings)
        worker = start_worker(app.settings)
        try:
            wait_for(lambda: worker.poll() is not None or app.alice.get("/workers").get_json()["items"], 60,
                     "the worker to register")
            assert worker.poll() is None, (app.settings.home / "worker.log").read_text()
            yield app
        finally:
            stop_process(worker)
            app.engine.dispose()


@pytest.fixture
def published(monkeypatch):
    """The ids of the jobs the API published to the broker during the test."""
    sent: list[str] = []
    original = trainyard.api.jobs._publish
    monkeypatch.setattr(trainyard.api.jobs, "_publish", lambda job: (sent.append(job.id), original(job)))
    return sent


def finished(app, caller, job_id: str, timeout: float = 60) -> dict:
    def done():
        job = caller.get(f"/jobs/{job_id}").get_json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout, f"job {job_id} to finish", interval=0.05)


def spec(**training) -> dict:
    return {**XOR_FIT, "training": {**XOR_FIT["training"], **training}}


def upload(caller, text: str) -> str:
    r = caller.post("/datasets", data={"name": "gates", "format": "csv", "target": "label",
                                       "file": (io.BytesIO(text.encode()), "gates.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def on_upload(dataset_id: str, seed: int = 3) -> dict:
    return {**spec(seed=seed, epochs=100), "dataset": {"id": dataset_id, "test_split": 0.25}}


def results(caller, job_id: str) -> tuple:
    """Everything a job's results are: metrics, versions, history, model bytes, test confusion matrix, predictions."""
    job = caller.get(f"/jobs/{job_id}").get_json()
    return (job["metrics"], job["versions"], job["progress"],
            caller.get(f"/jobs/{job_id}/history").get_json()["epochs"],
            caller.get(f"/jobs/{job_id}/model").data,
            caller.get(f"/jobs/{job_id}/confusion-matrix?split=train").get_json(),
            caller.post(f"/jobs/{job_id}/predict", json={"inputs": XOR_INPUTS}).get_json())


def test_an_identical_job_succeeds_at_once_with_the_earlier_results_and_survives_its_deletion(live, published):
    alice = live.alice
    first = alice.submit({**spec(seed=11), "name": "original"})
    assert finished(live, alice, first["id"])["status"] == "succeeded"
    before = results(alice, first["id"])
    assert len(before[3]) == 200 and before[4][:2] == b"PK"

    again = alice.post("/jobs", json={**spec(seed=11), "name": "renamed: the name changes nothing trained"})
    assert again.status_code == 201
    body = again.get_json()
    assert body["status"] == "succeeded" and body["reused_from"] == first["id"]
    assert body["attempts"] == 0 and body["worker"] is None and body["started_at"] and body["finished_at"]
    assert published == [first["id"]]  # nothing was sent to the broker for the reused job
    assert results(alice, body["id"]) == before

    # The copy shares the blobs: deleting the original leaves it whole.
    with session_scope(live.sessions) as s:
        shas = {a.kind: a.blob_sha256 for a in s.query(Artifact).filter_by(job_id=body["id"])}
        assert shas == {a.kind: a.blob_sha256 for a in s.query(Artifact).filter_by(job_id=first["id"])}
        assert "model" in shas and "checkpoint" not in shas
    assert alice.delete(f"/jobs/{first['id']}").status_code == 204
    assert alice.get(f"/jobs/{first['id']}").status_code == 404
    live.app.extensions["trainyard"].predictors.forget(body["id"])  # predict reloads the model from its blob
    assert results(alice, body["id"]) == before
    with session_scope(live.sessions) as s:
        assert s.get(Blob, shas["model"]) is not None
        assert s.query(HistoryChunk).filter_by(job_id=first["id"]).count() == 0

    # A copy of a copy (the original is gone) is still exact; it names the job it copied.
    third = alice.submit(spec(seed=11))
    assert third["status"] == "succeeded" and third["reused_from"] == body["id"]
    assert results(alice, third["id"]) == before


def test_reuse_false_trains_again_and_the_deterministic_engine_gives_the_same_results(live, published):
    alice = live.alice
    first = alice.submit(spec(seed=12))
    assert finished(live, alice, first["id"])["status"] == "succeeded"
    fresh = alice.submit({**spec(seed=12), "reuse": False})
    assert fresh["status"] == "queued" and fresh["spec"]["reuse"] is False and fresh["reused_from"] is None
    done = finished(live, alice, fresh["id"])
    assert done["status"] == "succeeded" and done["attempts"] == 1 and done["reused_from"] is None
    assert published == [first["id"], fresh["id"]]
    again, before = results(alice, fresh["id"]), results(alice, first["id"])
    assert again[4] != before[4]  # a new model file (its spec says "reuse": false)…
    assert again[0] == before[0] and again[6] == before[6]  # …trained to the same metrics and predictions
    assert [r["loss"] for r in again[3]] == [r["loss"] for r in before[3]]


def test_only_a_succeeded_job_of_the_same_owner_with_the_same_seed_and_data_is_reused(live):
    alice, bob = live.alice, live.bob
    first = alice.submit(spec(seed=13))
    assert finished(live, alice, first["id"])["status"] == "succeeded"
    assert bob.submit(spec(seed=13))["status"] == "queued"  # another user's identical job
    assert alice.submit(spec(seed=14))["status"] == "queued"  # another seed
    assert alice.submit({**spec(seed=13), "dataset": {"builtin": "xor", "seed": 99}})["status"] == "queued"

    failed = alice.submit(DIVERGES)
    assert finished(live, alice, failed["id"])["error"]["code"] == "diverged"
    assert alice.submit(DIVERGES)["status"] == "queued"  # a failed job is not reused

    # No worker listens on gpu: cancelled while queued.
    gpu = alice.submit({**spec(seed=15), "backend": "keras", "device": "gpu"})
    assert alice.post(f"/jobs/{gpu['id']}/cancel").get_json()["status"] == "cancelled"
    again = alice.submit({**spec(seed=15), "backend": "keras", "device": "gpu"})
    assert again["status"] == "queued"  # a cancelled job is not reused
    alice.post(f"/jobs/{again['id']}/cancel")


def test_an_upload_is_identified_by_its_content(live):
    alice = live.alice
    original = upload(alice, CSV)
    first = alice.submit(on_upload(original))
    assert finished(live, alice, first["id"])["status"] == "succeeded"
    same_bytes = upload(alice, CSV)  # another upload of the same bytes: the same data
    reused = alice.submit(on_upload(same_bytes))
    assert reused["status"] == "succeeded" and reused["reused_from"] == first["id"]
    assert reused["spec"]["dataset"]["id"] == same_bytes
    other = upload(alice, ANOTHER)  # one label differs
    assert alice.submit(on_upload(other))["status"] == "queued"


def test_a_job_that_ran_with_other_library_versions_is_not_reused(api_both):
    """The worker writes the fingerprint from the versions it ran with; the submit compares the API's."""
    alice = api_both.alice
    job = alice.submit(spec(seed=16))
    document = api_both.alice.get(f"/jobs/{job['id']}").get_json()["spec"]
    train(api_both, job["id"], document)  # records this process's versions
    assert alice.submit(spec(seed=16))["reused_from"] == job["id"]

    other = alice.submit(spec(seed=17))
    with session_scope(api_both.sessions) as s:
        from trainyard.store.runs import claim_job, finish_job

        attempt = claim_job(session=s, job_id=other["id"], worker="w", lease_seconds=60).attempts
        result = train_job(validate_spec(document))
        finish_job(session=s, job_id=other["id"], attempt=attempt, status="succeeded", metrics=result.metrics,
                   model=result.model, model_format=result.format,
                   versions={**result.versions, "numpy": "1.0.0"})  # a worker with another numpy
    with session_scope(api_both.sessions) as s:
        assert s.get(Job, other["id"]).fingerprint != s.get(Job, job["id"]).fingerprint
    assert alice.submit(spec(seed=17))["status"] == "queued"


def test_name_and_priority_change_nothing_trained(api_both):
    alice = api_both.alice
    job = alice.submit({**spec(seed=19), "priority": "low"})
    train(api_both, job["id"], alice.get(f"/jobs/{job['id']}").get_json()["spec"])
    again = alice.submit({**spec(seed=19), "name": "another name", "priority": "high"})
    assert again["reused_from"] == job["id"] and again["spec"]["priority"] == "high"


def test_a_full_queue_refuses_new_work_but_not_a_reused_job(db_settings):
    limited = make_api(db_settings, max_queued_per_user=1)
    try:
        alice = limited.alice
        done = alice.submit(spec(seed=20))
        train(limited, done["id"], alice.get(f"/jobs/{done['id']}").get_json()["spec"])
        assert alice.submit(spec(seed=21))["status"] == "queued"  # the queue is full now
        assert alice.post("/jobs", json=spec(seed=22)).status_code == 429
        reused = alice.post("/jobs", json=spec(seed=20))
        assert reused.status_code == 201 and reused.get_json()["reused_from"] == done["id"]
        assert alice.post("/jobs", json={**spec(seed=20), "reuse": False}).status_code == 429
    finally:
        limited.engine.dispose()


def test_a_purged_job_is_not_reused(api_both):
    """Retention (store.retention) took its model or history: a copy would lack them."""
    alice = api_both.alice
    job = alice.submit(spec(seed=18))
    train(api_both, job["id"], alice.get(f"/jobs/{job['id']}").get_json()["spec"])
    with session_scope(api_both.sessions) as s:
        s.execute(update(Job).where(Job.id == job["id"]).values(purged_at=utcnow(), purged=["history"]))
    assert alice.submit(spec(seed=18))["status"] == "queued"


@pytest.mark.parametrize("backend", ["numpy", "sklearn"])
def test_the_versions_known_at_submit_are_those_a_job_records(backend):
    doc = {**spec(seed=1, epochs=2), "backend": backend}
    if backend == "sklearn":
        doc["model"] = {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                                   {"type": "dense", "units": 1, "activation": "sigmoid"}]}
    assert train_job(validate_spec(doc)).versions == backend_versions(backend)


def test_the_keras_versions_known_at_submit_are_those_the_backend_records():
    tf = pytest.importorskip("tensorflow")
    import keras

    assert backend_versions("keras") == {**backend_versions("numpy"), "tensorflow": tf.__version__,
                                         "keras": keras.__version__}
