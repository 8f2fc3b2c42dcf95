"""Playing the worker's part in-process (store.runs): claim a job, record its epochs, finish it trained or failed."""

from __future__ import annotations

from trainyard.core.callbacks import Callbacks
from trainyard.core.job import train_job
from trainyard.core.validate import validate_spec
from trainyard.store.db import session_scope
from trainyard.store.runs import claim_job, finish_job, heartbeat, record_epochs


def claim(api, job_id: str, worker: str = "test-worker") -> int:
    """Claim the queued job as `worker` (a 60 s lease); its attempt number."""
    with session_scope(api.sessions) as s:
        job = claim_job(session=s, job_id=job_id, worker=worker, lease_seconds=60)
        assert job is not None
        return job.attempts


def epochs(api, job_id: str, attempt: int, rows: list[dict]) -> bool:
    """Record history rows and heartbeat at the last one's epoch; whether the attempt still holds the lease."""
    with session_scope(api.sessions) as s:
        record_epochs(session=s, job_id=job_id, rows=rows)
        return heartbeat(session=s, job_id=job_id, attempt=attempt, lease_seconds=60, epoch=rows[-1]["epoch"])


def train(api, job_id: str, spec: dict) -> None:
    """Claim the job, train `spec` in-process and record everything as a worker would."""
    attempt = claim(api, job_id)
    rows: list[dict] = []
    result = train_job(validate_spec(spec), Callbacks(on_epoch=rows.append))
    epochs(api, job_id, attempt, result.history)
    with session_scope(api.sessions) as s:
        finish_job(session=s, job_id=job_id, attempt=attempt, status="succeeded", metrics=result.metrics,
                   model=result.model, model_format=result.format, versions=result.versions,
                   epoch=len(result.history))


def fail(api, job_id: str, error: dict) -> None:
    """Claim the job and finish it failed with `error`."""
    attempt = claim(api, job_id)
    with session_scope(api.sessions) as s:
        finish_job(session=s, job_id=job_id, attempt=attempt, status="failed", error=error)
