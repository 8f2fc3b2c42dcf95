"""`trainyard reconcile`: every few seconds, settle what the broker cannot be trusted with (DESIGN §5).

Running jobs whose lease expired go back to the queue (or fail with `worker_lost`
after `max_attempts`); queued jobs that a free worker has not claimed for a while are
published again (their message was lost). Both are decided in the database first and
published after the commit; a duplicate message is harmless (the claim drops it).
The process also runs the sweep controller's loop in a thread (worker/controller.py).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.fairshare import held_devices
from trainyard.store.runs import jobs_to_republish, requeue_expired_jobs
from trainyard.store.settings import Settings, load_settings
from trainyard.store.workers import prune_workers
from trainyard.worker.app import create_celery
from trainyard.worker.controller import start_controller_thread
from trainyard.worker.collector import start_collector
from trainyard.worker.publish import publish_job

log = logging.getLogger(__name__)
FORGET_WORKERS_AFTER_SECONDS = 24 * 3600  # a killed worker's row stays visible (not live) this long


def reconcile_once(*, settings: Settings, factory: sessionmaker[Session], celery: Celery) -> dict[str, int]:
    """One pass; returns how many jobs were requeued, failed and republished."""
    with session_scope(factory) as session:
        requeued, failed = requeue_expired_jobs(session=session, max_attempts=settings.max_attempts)
        stale = jobs_to_republish(session=session, unclaimed_seconds=settings.republish_after_seconds,
                                  live_seconds=settings.worker_live_seconds,
                                  max_running_per_user=settings.max_running_per_user)
        to_send = [(job.id, job.device) for job in requeued + stale]
        for owner in {job.owner_id for job in failed}:  # stopped running: a job a quota held back may start
            to_send += held_devices(session=session, owner=owner, max_running_per_user=settings.max_running_per_user)
        prune_workers(session=session, unseen_seconds=FORGET_WORKERS_AFTER_SECONDS)
    for job in failed:
        log.warning("job %s: %s", job.id, job.error["message"] if job.error else job.status)
    sent = 0
    for job_id, device in to_send:
        try:
            publish_job(celery=celery, job_id=job_id, device=device)
            sent += 1
        except Exception:  # the broker is down: the job stays queued and the next pass tries again
            log.exception("job %s: publish failed", job_id)
    return {"requeued": len(requeued), "failed": len(failed), "republished": len(stale), "sent": sent}


def main() -> int:
    """The reconciler loop until SIGTERM/SIGINT; the exit status."""
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = make_engine(settings)
    factory, celery = make_sessionmaker(engine), create_celery(settings)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    log.info("reconciler: every %g s", settings.reconcile_interval_seconds)
    controller = start_controller_thread(settings, factory, stopping)  # sweeps (worker/controller.py)
    collector = start_collector(settings=settings, factory=factory, stopping=stopping)  # retention (issue 14)
    while not stopping.is_set():
        try:
            counts = reconcile_once(settings=settings, factory=factory, celery=celery)
            if any(counts.values()):
                log.info("reconciler: %s", counts)
        except Exception:  # the database may be briefly unreachable
            log.exception("reconciler: pass failed; retrying")
        stopping.wait(settings.reconcile_interval_seconds)
    if collector is not None:
        collector.join(timeout=settings.db_statement_timeout_seconds)
    controller.join(timeout=settings.db_statement_timeout_seconds)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
