"""trainyard.worker.runner.run_job in-process: double delivery, timeouts, internal errors, lost leases, stored bad specs."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import update

from trainyard.core.spec import parse_spec
from trainyard.store.db import session_scope
from trainyard.store.jobs import create_job, get_history, get_job
from trainyard.store.models import Job
from trainyard.worker.runner import run_job

pytestmark = pytest.mark.timeout(60)

XOR = {"dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 2, "activation": "relu"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 20, "batch_size": 2, "seed": 1}}


def submit(factory, owner, **training) -> str:
    with session_scope(factory) as session:
        job, _ = create_job(session=session, owner=owner,
                            spec=parse_spec({**XOR, "training": {**XOR["training"], **training}}))
        return job.id


def job_row(factory, owner, job_id):
    with session_scope(factory) as session:
        return get_job(session=session, owner=owner, job_id=job_id)


def test_a_second_delivery_does_nothing(migrated_settings, session_factory, user_id):
    job_id = submit(session_factory, user_id)
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "succeeded"
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "skipped"
    job = job_row(session_factory, user_id, job_id)
    assert (job.status, job.attempts, job.epoch) == ("succeeded", 1, 20)
    with session_scope(session_factory) as session:
        assert len(get_history(session=session, owner=user_id, job_id=job_id)[0]) == 20


def test_wall_clock_limit_fails_with_timeout(migrated_settings, session_factory, user_id):
    job_id = submit(session_factory, user_id, epochs=1_000_000)
    settings = migrated_settings.replace(job_timeout_seconds=0.5)
    started = time.monotonic()
    assert run_job(settings=settings, factory=session_factory, job_id=job_id, worker="w") == "failed"
    assert time.monotonic() - started < 5
    job = job_row(session_factory, user_id, job_id)
    assert job.error["code"] == "timeout" and "0.5 s" in job.error["message"] and job.epoch > 0


def test_unexpected_exception_is_internal(migrated_settings, session_factory, user_id, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("trainyard.worker.runner.train_job", boom)
    job_id = submit(session_factory, user_id)
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "failed"
    assert job_row(session_factory, user_id, job_id).error == {"code": "internal", "message": "RuntimeError: boom"}


def test_a_stored_spec_that_no_longer_validates_is_invalid_spec(migrated_settings, session_factory, user_id):
    job_id = submit(session_factory, user_id)
    with session_scope(session_factory) as session:
        job = session.get(Job, job_id)
        spec = dict(job.spec, model={"layers": [{"type": "dense", "units": 1, "activation": "bogus"}]})
        session.execute(update(Job).where(Job.id == job_id).values(spec=spec))
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "failed"
    error = job_row(session_factory, user_id, job_id).error
    assert error["code"] == "invalid_spec" and error["errors"][0]["loc"] == "model.layers[0].activation"


def test_a_lost_lease_stops_training_without_writing(migrated_settings, session_factory, user_id, monkeypatch):
    job_id = submit(session_factory, user_id)

    def train_until_stopped(spec, callbacks, **kwargs):
        with session_scope(session_factory) as session:  # the reconciler gave the job to attempt 2
            session.execute(update(Job).where(Job.id == job_id).values(attempts=2, worker="other"))
        while True:
            callbacks.check()
            time.sleep(0.01)

    monkeypatch.setattr("trainyard.worker.runner.train_job", train_until_stopped)
    assert run_job(settings=migrated_settings, factory=session_factory, job_id=job_id, worker="w") == "lost"
    job = job_row(session_factory, user_id, job_id)
    assert (job.status, job.worker, job.attempts) == ("running", "other", 2)


def test_a_call_stuck_past_the_limit_is_failed_and_the_process_stopped(migrated_settings, session_factory, user_id,
                                                                       monkeypatch):
    settings = migrated_settings.replace(job_timeout_seconds=0.2, lease_seconds=0.6, heartbeat_seconds=0.1)
    stopped = threading.Event()
    monkeypatch.setattr("trainyard.worker.runner.train_job", lambda *a, **k: stopped.wait(10))  # never calls check()
    job_id = submit(session_factory, user_id)
    assert run_job(settings=settings, factory=session_factory, job_id=job_id, worker="w",
                   on_hard_timeout=stopped.set) == "lost"  # in a worker, the process would be gone by now
    assert stopped.is_set()
    assert job_row(session_factory, user_id, job_id).error["code"] == "timeout"
