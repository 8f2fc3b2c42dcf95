"""GET /metrics: Prometheus metrics, whole across the API's processes.

`trainyard api` (api.serve) runs several gunicorn worker processes. With PROMETHEUS_MULTIPROC_DIR set (api.serve
sets it up before they fork) every process writes its counters to files there and a scrape, whichever process
answers it, adds up every process's files (prometheus_client's multiprocess mode): counters are whole and never
go down while the API runs. Without it (one process: tests, an embedded app) each app keeps its own registry.

Job and worker metrics come from the database (api.jobmetrics). A job deleted through this API is first added to
the `trainyard_retired_*` metrics (recorded like the HTTP counters, never exposed), so the job counters it was
part of do not go down. The response's Content-Type is the one prometheus_client's encoder names for the
format the scraper accepts (text 0.0.4 or OpenMetrics), once.
"""

from __future__ import annotations

import hmac
import os
import time
from collections import Counter as CountingDict
from datetime import datetime, timezone
from functools import lru_cache

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import event

from trainyard.api.errors import ApiError
from trainyard.api.jobmetrics import RETIRED, JobCollector, contributions
from trainyard.store.models import Job

bp = Blueprint("metrics", __name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SINCE_ENV = "TRAINYARD_METRICS_SINCE"  # api.serve: when the gunicorn master started (Unix seconds)


class Recorder:
    """The metrics an API process updates: HTTP requests, and the part of the job counters that deleted jobs hold.

    `registry` is the app's own, or None in multiprocess mode (the values live in PROMETHEUS_MULTIPROC_DIR).
    """

    def __init__(self, registry: CollectorRegistry | None):
        self.requests = Counter("trainyard_http_requests", "HTTP requests", ["method", "endpoint", "status"],
                                registry=registry)
        self.latency = Histogram("trainyard_http_request_seconds", "HTTP request latency", ["endpoint"],
                                 registry=registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
        self.retired = Counter(RETIRED, "What deleted jobs added to the job counters (api.jobmetrics keys)", ["key"],
                               registry=registry)

    def retire(self, parts: dict[str, int]) -> None:
        """Keep what deleted jobs added to the job counters (`trainyard.api.jobmetrics.contributions` of their rows)."""
        for key, n in parts.items():
            self.retired.labels(key).inc(n)


@lru_cache(maxsize=1)
def _process_recorder() -> Recorder:
    """Multiprocess mode: one Recorder per process (two metric objects of one name would overwrite each other's
    value in this process's file)."""
    return Recorder(None)


class MetricsState:
    """An app's metrics: where its counters live, and since when the job counters count."""

    def __init__(self, multiproc_dir: str | None, since: datetime):
        self.multiproc_dir, self.since = multiproc_dir, since
        self.registry = None if multiproc_dir else CollectorRegistry(auto_describe=True)
        self.recorder = _process_recorder() if multiproc_dir else Recorder(self.registry)

    def families(self) -> list:
        """Every family the process-side metrics hold: this app's, or every API process's (multiprocess)."""
        if self.multiproc_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiproc_dir)
            return list(registry.collect())
        return list(self.registry.collect())


class _Families:
    def __init__(self, families: list):
        self._families = families

    def collect(self):
        return self._families


def _since() -> datetime:
    """The gunicorn master's start (api.serve sets it), or now: this app's start."""
    raw = os.environ.get(SINCE_ENV)
    return datetime.fromtimestamp(float(raw) if raw else time.time(), timezone.utc)


def install(app: Flask) -> None:
    """Count every request, retire every job this app deletes, and keep the state `GET /metrics` reads."""
    st = app.extensions["trainyard"]
    metrics = st.metrics = MetricsState(os.environ.get(MULTIPROC_ENV) or None, _since())
    recorder = metrics.recorder

    @event.listens_for(st.sessions, "before_flush")
    def _deleting(session, _context, _instances) -> None:
        """Before a job's row goes: what it added to the job counters, by the collector's own queries."""
        ids = [o.id for o in session.deleted if isinstance(o, Job)]
        if ids:
            with session.no_autoflush:
                parts = contributions(session, since=metrics.since, job_ids=ids)
            session.info["retired"] = session.info.get("retired", CountingDict()) + parts

    @event.listens_for(st.sessions, "after_commit")
    def _retire(session) -> None:
        recorder.retire(session.info.pop("retired", {}))

    @event.listens_for(st.sessions, "after_soft_rollback")
    def _kept(session, previous) -> None:
        if not previous.nested:  # the whole transaction (a savepoint's rollback, as deleting a blob may do, keeps it)
            session.info.pop("retired", None)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        endpoint = request.endpoint or "unknown"
        recorder.requests.labels(request.method, endpoint, str(response.status_code)).inc()
        if "started" in g:
            recorder.latency.labels(endpoint).observe(time.perf_counter() - g.started)
        return response


@bp.get("/metrics")
def get_metrics():
    """Every metric in the format the scraper asks for; bearer `metrics_token` required only when that is set."""
    from trainyard.api.context import state

    s = state()
    if s.settings.metrics_token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), s.settings.metrics_token.encode()):
            raise ApiError(401, "/metrics needs the metrics token", kind="unauthorized",
                           headers={"WWW-Authenticate": "Bearer"})
    families = s.metrics.families()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([f for f in families if f.name != RETIRED]))
    retired = [f for f in families if f.name == RETIRED]
    registry.register(JobCollector(s.read_sessions, since=s.metrics.since, live_seconds=s.settings.worker_live_seconds,
                                   retired=lambda: retired))
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encoder(registry))
    response.headers["Content-Type"] = content_type  # as given: `mimetype=` would append a second charset
    return response

