"""The reconciler's garbage collector: `trainyard.store.gc.run_gc` every gc_interval_seconds while retention is on.

It runs in a thread of the reconciler process, so a long pass (many jobs to purge) never delays requeueing
expired leases; the first pass starts one interval after the reconciler does.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from trainyard.store.gc import describe, run_gc
from trainyard.store.settings import Settings

log = logging.getLogger(__name__)


def start_collector(*, settings: Settings, factory: sessionmaker[Session],
                    stopping: threading.Event) -> threading.Thread | None:
    """Start the collector thread (None while retention_days is 0); it ends when `stopping` is set."""
    if settings.retention_days <= 0:
        return None
    thread = threading.Thread(target=_loop, args=(settings, factory, stopping), name="gc", daemon=True)
    thread.start()
    log.info("gc: every %g s, purging finished jobs after %g days", settings.gc_interval_seconds,
             settings.retention_days)
    return thread


def _loop(settings: Settings, factory: sessionmaker[Session], stopping: threading.Event) -> None:
    while not stopping.wait(settings.gc_interval_seconds):
        try:
            report = run_gc(settings=settings, factory=factory)
        except Exception:  # the database may be briefly unreachable: the next interval tries again
            log.exception("gc: pass failed; retrying in %g s", settings.gc_interval_seconds)
            continue
        if report.jobs or report.blobs:
            log.info("gc: %s", describe(report).replace("\n", "; "))
