"""A real service without the API: a migrated database, a `trainyard.worker.main` worker process and a reconciler.

`running_service(settings)` starts them (waiting until the worker is registered and ready) and stops them on exit;
`Service` submits as the API does and reads jobs back.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from trainyard.core.validate import validate_spec
from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.jobs import create_job, get_job
from trainyard.store.migrate import upgrade
from trainyard.store.settings import Settings
from trainyard.store.tokens import get_or_create_user
from trainyard.store.workers import list_live_workers
from trainyard.worker.app import create_celery
from trainyard.worker.publish import publish_job

from tests.support.processes import start_process, stop_process


class Submitter:
    """Jobs as the database says, for a holder of `factory`, `owner` and `celery` (Service, the reliability Cluster)."""

    def create(self, document: dict, *, publish: bool = True) -> str:
        """Submit as the API does: insert and commit the job, then publish its id."""
        with session_scope(self.factory) as session:
            job, _ = create_job(session=session, owner=self.owner, spec=validate_spec(document))
            job_id, device = job.id, job.device
        if publish:
            publish_job(celery=self.celery, job_id=job_id, device=device)
        return job_id

    def job(self, job_id: str):
        """The job row as the owner sees it."""
        with session_scope(self.factory) as session:
            return get_job(session=session, owner=self.owner, job_id=job_id)


@dataclass
class Service(Submitter):
    settings: Settings
    factory: object
    celery: object
    owner: str
    worker: subprocess.Popen
    reconciler: subprocess.Popen
    logs: Path

    def wait(self, job_id: str, until=lambda job: job.is_finished, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if until(job):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} still {job.status} (epoch {job.epoch}) after {timeout} s;\n"
                             + self.log_tail())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(f"{p.name}: {line}" for p in sorted(self.logs.glob("*.log"))
                         for line in p.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_service(settings: Settings) -> Service:
    upgrade(settings)
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as session:
        owner = get_or_create_user(session=session, name="alice").id
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    worker = start_process(settings, ["-m", "trainyard.worker.main", "--queues", "cpu", "--concurrency", "1"],
                           logs / "worker.log")
    reconciler = start_process(settings, ["-m", "trainyard.worker.reconciler"], logs / "reconciler.log")
    service = Service(settings, factory, create_celery(settings), owner, worker, reconciler, logs)
    try:
        deadline = time.monotonic() + 60
        while not _worker_ready(service):
            assert worker.poll() is None and time.monotonic() < deadline, "worker did not start:\n" + service.log_tail()
            time.sleep(0.1)
        yield service
    finally:
        stop_process(reconciler)
        stop_process(worker)
        engine.dispose()


def _worker_ready(service: Service) -> bool:
    with session_scope(service.factory) as session:
        if not list_live_workers(session=session, live_seconds=60):
            return False
    return "ready." in (service.logs / "worker.log").read_text(errors="replace")
