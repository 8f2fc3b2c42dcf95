"""Job and worker metrics read from the database at scrape time (the database, not an API process, knows every job).

Gauges say what is true now: jobs by status, queue depth, epochs per second, live and busy workers.

Counters and histograms must never go down, yet they are read from rows a user may delete. So they count the
jobs that *finished since this API started* (`since`: the gunicorn master's start, shared by its processes),
and a job's part is kept when it is deleted: api.metrics computes what its row adds (`contributions`, the same
queries restricted to it, in whole milliseconds so the numbers match exactly) before the row goes and adds that
to the `trainyard_retired` counter, which the collector adds back. An API restart starts them again from zero,
which Prometheus reads as the counter reset it is. Counted per finished job: its status, backend and queue; its
error code when it failed; its run time (started → finished); its queue wait (submitted → its last start); its
attempts, and its requeues (attempts after the first: a lost worker's job that went back to its queue).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from typing import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import BigInteger, case, cast, func, select

from trainyard.api.schemas import ErrorCode
from trainyard.store.models import ACTIVE, FAILED, FINISHED, QUEUED, RUNNING, Job, Worker

STATUSES = ACTIVE + FINISHED
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600)
WAIT_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)
RETIRED = "trainyard_retired"  # a counter of the deleted jobs' part (api.metrics), merged below, never exposed


def _milliseconds(dialect: str, end, start):
    """`end - start` in whole milliseconds (0 if negative: a job that reused another's results is stamped started
    as it is created), as SQL: integers add up exactly, so the part of a sum that moves from the rows to the
    retired counter when a job is deleted is the same number on both sides."""
    if dialect == "postgresql":  # date_part is double precision (EXTRACT's numeric is several times slower)
        ms = cast(func.floor(func.date_part("epoch", end - start) * 1000), BigInteger)
    else:  # SQLite's julianday keeps whole milliseconds; the float difference is within a hair of an integer
        ms = cast(func.round((func.julianday(end) - func.julianday(start)) * 86400000.0), BigInteger)
    return case((ms < 0, 0), else_=ms)


def _key(*parts) -> str:
    return json.dumps(parts)


def contributions(db, *, since: datetime, job_ids: list[str] | None = None) -> Counter[str]:
    """What the jobs that finished since `since` (only `job_ids`, if given) add to each job counter: a flat
    {key: integer} (durations in milliseconds), computed by the database.

    The collector sums it over every row; a job deleted through the API is first summed alone with the very same
    queries (api.metrics), so what it held is kept exactly.
    """
    finished = [Job.status.in_(FINISHED), Job.finished_at.is_not(None), Job.finished_at >= since]
    if job_ids is not None:
        finished.append(Job.id.in_(job_ids))
    out: Counter[str] = Counter()
    for status, backend, device, n in db.execute(select(Job.status, Job.backend, Job.device, func.count())
                                                 .where(*finished).group_by(Job.status, Job.backend, Job.device)):
        out[_key("finished", status, backend, device)] += n
    code = Job.error["code"].as_string()
    for c, n in db.execute(select(code, func.count()).where(Job.status == FAILED, *finished).group_by(code)):
        out[_key("failures", c or "unknown")] += n
    attempts, requeues = db.execute(select(
        func.coalesce(func.sum(Job.attempts), 0),
        func.coalesce(func.sum(case((Job.attempts > 1, Job.attempts - 1), else_=0)), 0)).where(*finished)).one()
    out[_key("attempts")] += int(attempts)
    out[_key("requeues")] += int(requeues)
    dialect = db.get_bind().dialect.name
    ran = (*finished, Job.started_at.is_not(None))
    for kind, ms, label, bounds in (
            ("duration", _milliseconds(dialect, Job.finished_at, Job.started_at), Job.status, DURATION_BUCKETS),
            ("wait", _milliseconds(dialect, Job.started_at, Job.created_at), Job.device, WAIT_BUCKETS)):
        # Each row falls in one bucket (the first bound it is under); the cumulative counts are added up here.
        # (OFFSET 0: the database computes each row's ms once rather than in every reference to it.)
        rows = select(label.label("value"), ms.label("ms")).where(*ran).offset(0).subquery()
        bucket = case(*[(rows.c.ms <= round(b * 1000), i) for i, b in enumerate(bounds)], else_=len(bounds))
        query = (select(rows.c.value, bucket, func.count(), func.sum(rows.c.ms))
                 .group_by(rows.c.value, bucket))
        for value, index, count, total_ms in db.execute(query):
            out[_key(kind, value, "count")] += count
            out[_key(kind, value, "sum_ms")] += int(total_ms)
            for bound in bounds[index:]:
                out[_key(kind, value, _le(bound))] += count
    return Counter({k: v for k, v in out.items() if v})


def _histogram(name: str, doc: str, label: str, values: Iterable[str], kind: str, bounds,
               totals: Counter[str]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value in values:
        buckets = [(_le(b), totals[_key(kind, value, _le(b))]) for b in bounds]
        buckets.append(("+Inf", totals[_key(kind, value, "count")]))
        family.add_metric([value], buckets, sum_value=totals[_key(kind, value, "sum_ms")] / 1000)
    return family


def _le(bound: float) -> str:
    return str(float(bound))


def retired_totals(families: Iterable[Metric]) -> Counter[str]:
    """The `trainyard_retired` counter's values by key (every API process's, in multiprocess mode)."""
    out: Counter[str] = Counter()
    for family in families:
        if family.name == RETIRED:
            for s in family.samples:
                if s.name == RETIRED + "_total":
                    out[s.labels["key"]] += int(s.value)
    return out


class JobCollector:
    """Collects at every scrape: `sessions` reads the database; `retired()` gives the deleted jobs' families."""

    def __init__(self, sessions, *, since: datetime, live_seconds: float, retired: Callable[[], list[Metric]]):
        self.sessions, self.since, self.live_seconds, self.retired = sessions, since, live_seconds, retired

    def describe(self):
        """No families up front: describing must not touch the database (the registry asks at registration)."""
        return []

    def collect(self):
        retired = list(self.retired())
        with self.sessions() as db:
            yield from self._gauges(db)
            yield from self._workers(db)
            yield from self._finished(db, retired)

    def _gauges(self, db):
        by_status = dict(db.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        depth = dict(db.execute(select(Job.device, func.count()).where(Job.status == QUEUED)
                                .group_by(Job.device)).all())
        running = db.execute(select(Job.epoch, Job.started_at).where(Job.status == RUNNING)).all()
        jobs = GaugeMetricFamily("trainyard_jobs", "Jobs by status", labels=["status"])
        for status in STATUSES:
            jobs.add_metric([status], by_status.get(status, 0))
        yield jobs
        queue = GaugeMetricFamily("trainyard_queue_depth", "Queued jobs per queue", labels=["queue"])
        for device in sorted(set(depth) | {"cpu", "gpu"}):
            queue.add_metric([device], depth.get(device, 0))
        yield queue
        now = datetime.now(timezone.utc)
        rate = sum(epoch / max((now - _utc(started)).total_seconds(), 1e-3) for epoch, started in running if started)
        yield GaugeMetricFamily("trainyard_epochs_per_second", "Epochs per second summed over running jobs",
                                value=rate)

    def _workers(self, db):
        cutoff = datetime.now(timezone.utc).timestamp() - self.live_seconds
        live = [(name, device) for name, device, seen in db.execute(select(Worker.name, Worker.device,
                                                                           Worker.last_seen))
                if _utc(seen).timestamp() >= cutoff]
        busy_names = set(db.scalars(select(Job.worker).where(Job.status == RUNNING, Job.worker.is_not(None))))
        workers = GaugeMetricFamily("trainyard_workers", "Live workers (seen within worker_live_seconds) per queue",
                                    labels=["queue"])
        busy = GaugeMetricFamily("trainyard_workers_busy", "Live workers running at least one job, per queue",
                                 labels=["queue"])
        for device in sorted({d for _, d in live} | {"cpu", "gpu"}):
            workers.add_metric([device], sum(1 for _, d in live if d == device))
            busy.add_metric([device], sum(1 for n, d in live if d == device and n in busy_names))
        yield workers
        yield busy

    def _finished(self, db, retired: list[Metric]):
        totals = contributions(db, since=self.since) + retired_totals(retired)
        keys = [json.loads(k) for k in totals]
        jobs = CounterMetricFamily("trainyard_jobs_finished", "Jobs that finished since the API started",
                                   labels=["status", "backend", "queue"])
        for _, status, backend, device in sorted(k for k in keys if k[0] == "finished"):
            jobs.add_metric([status, backend, device], totals[_key("finished", status, backend, device)])
        yield jobs
        failures = CounterMetricFamily("trainyard_job_failures", "Failed jobs by error code, since the API started",
                                       labels=["code"])
        # every known code from 0, so that rate() sees the first failure of each
        for code in sorted({k[1] for k in keys if k[0] == "failures"} | set(ErrorCode.__args__)):
            failures.add_metric([code], totals[_key("failures", code)])
        yield failures
        yield CounterMetricFamily("trainyard_job_attempts", "Attempts of the jobs that finished since the API started",
                                  value=totals[_key("attempts")])
        yield CounterMetricFamily("trainyard_job_requeues", "Times a job that finished since the API started went "
                                  "back to its queue (its worker was lost)", value=totals[_key("requeues")])
        yield _histogram("trainyard_job_duration_seconds",
                         "Run time (started to finished) of the jobs that finished since the API started",
                         "status", FINISHED, "duration", DURATION_BUCKETS, totals)
        queues = sorted({k[1] for k in keys if k[0] == "wait"} | {"cpu", "gpu"})
        yield _histogram("trainyard_job_queue_wait_seconds",
                         "Queue wait (submitted to last started) of the jobs that finished since the API started",
                         "queue", queues, "wait", WAIT_BUCKETS, totals)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
