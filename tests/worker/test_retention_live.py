"""gc while a real worker trains (SQLite + file broker, PostgreSQL + Redis): a job that checkpoints every 5 epochs,
whose worker process is killed mid-job, resumes from its checkpoint and succeeds with the same result as an
uninterrupted run while gc passes (retention on, no grace age) run back to back and purge old jobs beside it;
its uploaded dataset and its model survive and the model downloads through the API. The reconciler runs the same
gc by itself when retention is on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from trainyard.api.app import create_app
from trainyard.core.job import train_job
from trainyard.core.validate import validate_spec
from trainyard.store.blobs import put_blob
from trainyard.store.datasets import create_dataset
from trainyard.store.db import session_scope
from trainyard.store.gc import run_gc
from trainyard.store.jobs import get_job, history_rows
from trainyard.store.models import Artifact, Blob, Job, utcnow
from trainyard.store.tokens import create_token
from trainyard.worker.runner import load_upload

pytestmark = pytest.mark.timeout(120)

CSV = b"a,b,y\n" + b"".join(b"%d,%d,%d\n" % (a, b, a ^ b) for a in (0, 1) for b in (0, 1) for _ in range(5))


def spec(dataset_id: str, **training) -> dict:
    return {"name": "xor", "dataset": {"id": dataset_id},
            "model": {"layers": [{"type": "dense", "units": 4, "activation": "relu"},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {"epochs": 300, "batch_size": 4, "seed": 1,
                         "optimizer": {"name": "adam", "learning_rate": 0.05}, **training}}


def old_finished_job(service, dataset_id: str, epochs: int = 5) -> str:
    """A job trained by the service and then back-dated 40 days (retention 30 purges it)."""
    job_id = service.create(spec(dataset_id, epochs=epochs, seed=epochs))
    assert service.wait(job_id).status == "succeeded"
    with session_scope(service.factory) as session:
        session.execute(update(Job).where(Job.id == job_id).values(finished_at=utcnow() - timedelta(days=40)))
    return job_id


def start_reconciler(settings, log) -> subprocess.Popen:
    """`python -m trainyard.worker.reconciler` with `settings` (tests/worker/conftest.py's helpers cannot be imported by name
    when another test folder's conftest is loaded too)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(root)}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "trainyard.worker.reconciler"], cwd=root, stdout=out,
                                stderr=subprocess.STDOUT, env=env)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


@pytest.fixture
def dataset(service) -> str:
    with session_scope(service.factory) as session:
        return create_dataset(session=session, owner=service.owner, name="xor.csv", format="csv", data=CSV,
                              task="classification", n_samples=20, n_features=2, n_classes=2, target="y").id


def test_a_job_resumes_and_its_model_downloads_while_gc_runs_back_to_back(service, dataset):
    settings = service.settings.replace(retention_days=30.0, gc_grace_seconds=0.0)
    old = [old_finished_job(service, dataset, epochs) for epochs in (5, 6)]
    document = spec(dataset, epochs=600, checkpoint_every=5)
    upload = load_upload(settings=service.settings, factory=service.factory, dataset_id=dataset)
    reference = train_job(validate_spec(document), upload=upload)  # what an uninterrupted run gives
    with session_scope(service.factory) as session:
        orphan = put_blob(session=session, data=b"an upload that never got its dataset row")

    stop, passes, errors, purged, blobs = threading.Event(), [], [], set(), []

    def collect() -> None:
        while not stop.is_set():
            try:
                report = run_gc(settings=settings, factory=service.factory)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
                return
            passes.append(1)
            purged.update(j.id for j in report.jobs)
            blobs.append(report.blobs)

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        job_id = service.create(document)
        service.wait(job_id, until=lambda job: job.epoch >= 150, timeout=60)
        for child in _children(service.worker.pid):  # the pool process running the job
            os.kill(child, signal.SIGKILL)
        job = service.wait(job_id, timeout=90)
        time.sleep(0.2)
    finally:
        stop.set()
        collector.join(60)
    assert errors == [] and len(passes) >= 5, (errors, len(passes))
    assert (job.status, job.attempts) == ("succeeded", 2), job.error
    assert "resuming after epoch" in (service.logs / "worker.log").read_text()
    with session_scope(service.factory) as session:
        assert [r["epoch"] for r in history_rows(session=session, job_id=job_id)] == list(range(1, 601))
    assert job.metrics["loss"] == pytest.approx(reference.metrics["loss"], rel=1e-5)
    assert purged == set(old) and sum(blobs) >= 3  # two old models and the orphan

    with session_scope(service.factory) as session:
        assert session.get(Blob, orphan) is None
        assert get_job(session=session, owner=service.owner, job_id=job_id).purged_at is None
        kept = set(session.scalars(select(Artifact.kind).where(Artifact.job_id == job_id)))
        assert "model" in kept and "checkpoint" not in kept  # the last checkpoint went when the job finished
        token, _ = create_token(session=session, user_name="alice")
    app = create_app(service.settings)
    try:
        client, auth = app.test_client(), {"Authorization": f"Bearer {token}"}
        r = client.get(f"/api/v1/jobs/{job_id}/model", headers=auth)
        assert r.status_code == 200 and r.data == reference.model
        r = client.post(f"/api/v1/jobs/{job_id}/predict", headers=auth, json={"inputs": [[0, 0], [0, 1], [1, 0]]})
        assert r.status_code == 200 and r.get_json()["predictions"] == [0, 1, 1]
        assert client.get(f"/api/v1/datasets/{dataset}", headers=auth).status_code == 200
        assert client.get(f"/api/v1/jobs/{old[0]}/model", headers=auth).status_code == 410
    finally:
        app.extensions["trainyard"].engine.dispose()


def test_the_reconciler_purges_by_itself_when_retention_is_on(service, dataset):
    job_id = old_finished_job(service, dataset, epochs=7)
    settings = service.settings.replace(retention_days=30.0, gc_interval_seconds=0.3)
    reconciler = start_reconciler(settings, service.logs / "reconciler-gc.log")
    try:
        service.wait(job_id, until=lambda job: job.purged_at is not None, timeout=30)
    finally:
        reconciler.terminate()  # SIGTERM: the reconciler stops its loop and its gc thread
        assert reconciler.wait(30) == 0
    assert service.job(job_id).purged == ["history", "model"]
    assert "gc: purge 1 job finished" in (service.logs / "reconciler-gc.log").read_text()

