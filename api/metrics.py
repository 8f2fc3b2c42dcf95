"""GET /metrics: Prometheus text format from a registry of this app's own (jobs by status, queue depth, durations, epochs/s, requests)."""

from __future__ import annotations

import hmac
import time
from datetime import datetime, timezone

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import case, func, select

from api.errors import ApiError
from store.models import ACTIVE, FINISHED, QUEUED, RUNNING, Job

bp = Blueprint("metrics", __name__)
STATUSES = ACTIVE + FINISHED
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, float("inf"))


class JobCollector:
    """Reads the jobs table at scrape time: the database, not this process, knows every job."""

    def __init__(self, sessions):
        self.sessions = sessions

    def describe(self):
        """The families, without touching the database (the registry asks when the collector is registered)."""
        yield GaugeMetricFamily("trainyard_jobs", "Jobs by status", labels=["status"])
        yield GaugeMetricFamily("trainyard_queue_depth", "Queued jobs per queue", labels=["queue"])
        yield GaugeMetricFamily("trainyard_epochs_per_second", "Epochs per second summed over running jobs")
        yield HistogramMetricFamily("trainyard_job_duration_seconds", "Run time of finished jobs", labels=["status"])

    def collect(self):
        with self.sessions() as db:
            by_status = dict(db.execute(select(Job.status, func.count()).group_by(Job.status)).all())
            depth = dict(db.execute(select(Job.device, func.count()).where(Job.status == QUEUED)
                                    .group_by(Job.device)).all())
            running = db.execute(select(Job.epoch, Job.started_at).where(Job.status == RUNNING)).all()
            finished = _duration_rows(db)
        jobs = GaugeMetricFamily("trainyard_jobs", "Jobs by status", labels=["status"])
        for status in STATUSES:
            jobs.add_metric([status], by_status.get(status, 0))
        yield jobs
        queue = GaugeMetricFamily("trainyard_queue_depth", "Queued jobs per queue", labels=["queue"])
        for device in sorted(set(depth) | {"cpu", "gpu"}):
            queue.add_metric([device], depth.get(device, 0))
        yield queue
        now = datetime.now(timezone.utc)
        rate = sum(epoch / max((now - started).total_seconds(), 1e-3) for epoch, started in running if started)
        yield GaugeMetricFamily("trainyard_epochs_per_second", "Epochs per second summed over running jobs", value=rate)
        yield _durations(finished)


def _seconds(dialect: str):
    """A finished job's run time in seconds, as SQL (the database counts the buckets; no rows come back)."""
    if dialect == "postgresql":
        return func.extract("epoch", Job.finished_at - Job.started_at)
    return (func.julianday(Job.finished_at) - func.julianday(Job.started_at)) * 86400.0


def _duration_rows(db) -> dict[str, tuple]:
    """status → (count, sum of seconds, count <= each finite bucket bound)."""
    seconds = _seconds(db.get_bind().dialect.name)
    bounds = [b for b in DURATION_BUCKETS if b != float("inf")]
    query = (select(Job.status, func.count(), func.coalesce(func.sum(seconds), 0.0),
                    *[func.coalesce(func.sum(case((seconds <= b, 1), else_=0)), 0) for b in bounds])
             .where(Job.status.in_(FINISHED), Job.started_at.is_not(None), Job.finished_at.is_not(None))
             .group_by(Job.status))
    return {row[0]: tuple(row[1:]) for row in db.execute(query)}


def _durations(rows: dict[str, tuple]) -> HistogramMetricFamily:
    family = HistogramMetricFamily("trainyard_job_duration_seconds", "Run time of finished jobs (started to finished)",
                                   labels=["status"])
    for status in FINISHED:
        count, total, *counts = rows.get(status, (0, 0.0) + (0,) * (len(DURATION_BUCKETS) - 1))
        buckets = [(_le(b), int(c)) for b, c in zip(DURATION_BUCKETS, counts)] + [("+Inf", int(count))]
        family.add_metric([status], buckets, sum_value=float(total))
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else str(bound)


def install(app: Flask) -> None:
    """Give `app` its own registry (so several apps in one process never clash) and per-request metrics."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(JobCollector(app.extensions["trainyard"].read_sessions))
    requests = Counter("trainyard_http_requests", "HTTP requests", ["method", "endpoint", "status"], registry=registry)
    latency = Histogram("trainyard_http_request_seconds", "HTTP request latency", ["endpoint"], registry=registry,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
    app.extensions["trainyard"].metrics = registry

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        endpoint = request.endpoint or "unknown"
        requests.labels(request.method, endpoint, str(response.status_code)).inc()
        if "started" in g:
            latency.labels(endpoint).observe(time.perf_counter() - g.started)
        return response


@bp.get("/metrics")
def get_metrics():
    """The app's registry in Prometheus text format; bearer `metrics_token` required only when that is set."""
    from api.context import state

    s = state()
    if s.settings.metrics_token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), s.settings.metrics_token.encode()):
            raise ApiError(401, "/metrics needs the metrics token", kind="unauthorized",
                           headers={"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(s.metrics), mimetype=CONTENT_TYPE_LATEST)
