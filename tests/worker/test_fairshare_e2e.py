"""Fair share, priorities and quotas with a real worker process, on SQLite + file broker and PostgreSQL + Redis.

No reconciler runs here: every job must start through its own message, another job's message (the policy picks
the job, not the message) or the message a quota's release sends, never through a republish. Jobs that must
keep a worker busy train "forever" and are cancelled to free their slot at a chosen moment, so nothing depends
on timing.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from trainyard.core.validate import validate_spec
from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.errors import JobFinished
from trainyard.store.fairshare import QueueView
from trainyard.store.jobs import create_job, request_cancel
from trainyard.store.migrate import upgrade
from trainyard.store.models import RUNNING, Job, utcnow
from trainyard.store.settings import Settings
from trainyard.store.tokens import get_or_create_user
from trainyard.store.workers import list_live_workers
from trainyard.worker.app import create_celery
from trainyard.worker.publish import publish_job

from tests.support.processes import start_process, stop_process

pytestmark = pytest.mark.timeout(180)
FOREVER = 1_000_000
seeds = itertools.count(1)  # every job differs: an identical one would reuse an earlier result and never queue


def xor(epochs: int, priority: str = "normal") -> dict:
    return {"dataset": {"builtin": "xor"}, "priority": priority,
            "model": {"layers": [{"type": "dense", "units": 4, "activation": "relu"},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {"epochs": epochs, "batch_size": 4, "seed": next(seeds)}}


@dataclass
class Stack:
    settings: Settings
    factory: object
    celery: object
    logs: Path
    worker: object = None
    config: tuple = ()
    users: dict = field(default_factory=dict)

    def use_worker(self, concurrency: int, quota: int = 0) -> None:
        """One worker on queue cpu with `concurrency` slots and `max_running_per_user` = `quota` (restarted if it
        runs with other ones)."""
        if self.config == (concurrency, quota):
            return
        if self.worker is not None:
            stop_process(self.worker)
        settings = self.settings.replace(max_running_per_user=quota)
        log = self.logs / f"worker-{concurrency}-{quota}.log"
        self.worker = start_process(settings, ["-m", "trainyard.worker.main", "--queues", "cpu", "--concurrency",
                                               str(concurrency)], log)
        self.config, self.log = (concurrency, quota), log
        deadline = time.monotonic() + 60
        while not (self._registered() and " ready." in log.read_text(errors="replace")):
            assert self.worker.poll() is None and time.monotonic() < deadline, self.log_tail()
            time.sleep(0.1)

    def _registered(self) -> bool:
        with session_scope(self.factory) as s:
            return any(w.pid == self.worker.pid for w in list_live_workers(session=s, live_seconds=60))

    def user(self, name: str) -> str:
        with session_scope(self.factory) as s:
            return get_or_create_user(session=s, name=name).id

    def submit(self, owner: str, document: dict, publish: bool = True) -> str:
        with session_scope(self.factory) as s:
            job, _ = create_job(session=s, owner=owner, spec=validate_spec(document))
        if publish:
            publish_job(celery=self.celery, job_id=job.id, device="cpu")
        return job.id

    def job(self, job_id: str) -> Job:
        with session_scope(self.factory) as s:
            return s.get(Job, job_id)

    def cancel(self, job_id: str) -> None:
        with session_scope(self.factory) as s:
            request_cancel(session=s, owner=self.job(job_id).owner_id, job_id=job_id)

    def wait(self, job_ids, until=lambda job: job.is_finished, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        for job_id in [job_ids] if isinstance(job_ids, str) else job_ids:
            while not until(self.job(job_id)):
                assert time.monotonic() < deadline, f"job {job_id} is {self.job(job_id).status}\n{self.log_tail()}"
                time.sleep(0.05)

    def view(self, quota: int = 0) -> dict[str, tuple[int, str]]:
        """(queue_position, pending_reason) of every queued job."""
        with session_scope(self.factory) as s:
            view = QueueView(s, live_seconds=self.settings.worker_live_seconds, max_running_per_user=quota)
            return {j.id: (view.position(j), view.reason(j)) for j in s.scalars(select(Job).where(
                Job.status == "queued"))}

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory, fresh_postgres, fast_timings):
    home = tmp_path_factory.mktemp(f"fairshare-{request.param}") / "home"

    def run(settings: Settings):
        upgrade(settings)
        engine = make_engine(settings)
        logs = settings.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        s = Stack(settings, make_sessionmaker(engine), create_celery(settings), logs)
        try:
            yield s
        finally:
            if s.worker is not None:
                stop_process(s.worker)
            engine.dispose()

    if request.param == "sqlite":
        yield from run(Settings(home=home, **fast_timings))
    else:
        with fresh_postgres(home) as settings:
            yield from run(settings)


def running(stack: Stack, job_id: str) -> bool:
    job = stack.job(job_id)
    return job.status == RUNNING and job.epoch > 0


def test_a_second_user_starts_as_soon_as_one_running_job_ends(stack):
    stack.use_worker(concurrency=2)
    a, b = stack.user("fs-a"), stack.user("fs-b")
    long = [stack.submit(a, xor(FOREVER)) for _ in range(2)]
    stack.wait(long, until=lambda job: job.epoch > 0)  # both slots busy
    queued = [stack.submit(a, xor(20)) for _ in range(28)]
    b_job = stack.submit(b, xor(20))
    view = stack.view()
    assert view[b_job] == (1, "next on queue cpu; every worker on it is busy")
    assert view[queued[0]] == (2, "every worker on queue cpu is busy; 1 job ahead of it in the fair-share order")
    assert view[queued[-1]][0] == 29
    stack.cancel(long[0])  # one running job ends
    stack.wait(b_job)
    b_started = stack.job(b_job).started_at
    assert stack.job(b_job).status == "succeeded"
    assert all(stack.job(j).started_at is None or stack.job(j).started_at > b_started for j in queued)
    stack.cancel(long[1])
    stack.wait(queued[:4])  # a's jobs go on in their order; the rest are cancelled (a queue of 28 costs time)
    for job_id in queued[4:]:
        with contextlib.suppress(JobFinished):  # it may have run meanwhile
            stack.cancel(job_id)
    stack.wait(queued)
    ran = [j for j in queued if stack.job(j).status == "succeeded"]
    assert ran[:4] == queued[:4] and {stack.job(j).attempts for j in ran} == {1}


def test_priorities_order_a_users_jobs(stack):
    stack.use_worker(concurrency=2)
    a = stack.user("prio-a")
    long = [stack.submit(a, xor(FOREVER)) for _ in range(2)]
    stack.wait(long, until=lambda job: job.epoch > 0)
    low, normal, high, high2 = (stack.submit(a, xor(20, p)) for p in ("low", "normal", "high", "high"))
    view = stack.view()
    assert {j: view[j][0] for j in (high, high2, normal, low)} == {high: 1, high2: 2, normal: 3, low: 4}
    assert view[normal][1] == "behind 2 queued jobs of yours of higher priority; every worker on queue cpu is busy"
    assert view[low][1] == "behind 3 queued jobs of yours of higher priority; every worker on queue cpu is busy"
    stack.cancel(long[0])  # one slot takes them one after another, the other keeps training
    stack.wait([high, high2, normal, low])
    started = sorted((stack.job(j).started_at, j) for j in (low, normal, high, high2))
    assert [j for _, j in started] == [high, high2, normal, low]
    stack.cancel(long[1])
    stack.wait(long[1])


def test_a_stale_message_starts_the_next_job_instead_of_being_wasted(stack):
    stack.use_worker(concurrency=2)
    a = stack.user("stale-a")
    long = stack.submit(a, xor(FOREVER))
    stack.wait(long, until=lambda job: job.epoch > 0)
    lost = stack.submit(a, xor(200), publish=False)  # its message never arrives
    publish_job(celery=stack.celery, job_id=long, device="cpu")  # a duplicate for the job already running
    stack.wait(lost)
    assert (stack.job(lost).status, stack.job(lost).attempts) == ("succeeded", 1)
    assert f"job {long}: its message went to job {lost}" in stack.log.read_text()
    stack.cancel(long)
    stack.wait(long)


def test_the_quota_holds_at_every_moment_and_held_jobs_start_after(stack):
    stack.use_worker(concurrency=3, quota=2)
    a, b = stack.user("quota-a"), stack.user("quota-b")
    long = [stack.submit(a, xor(FOREVER)) for _ in range(2)]
    stack.wait(long, until=lambda job: job.epoch > 0)
    held = [stack.submit(a, xor(20)) for _ in range(3)]
    # The free slot takes each held job's message and finds nothing it may start: the messages are dropped.
    deadline = time.monotonic() + 30
    while stack.log.read_text().count("no other job may start on queue cpu now") < 3:
        assert time.monotonic() < deadline, stack.log_tail()
        time.sleep(0.05)
    view = stack.view(quota=2)
    assert view[held[0]][1] == "waiting for your other 2 running jobs (max_running_per_user is 2)"
    assert view[held[1]][1] == ("waiting for your other 2 running jobs and 1 queued job of yours ahead of it "
                                "(max_running_per_user is 2)")
    peak, stop = [0], threading.Event()

    def watch() -> None:  # a's running jobs, as every process sees them, as often as the database answers
        while not stop.is_set():
            with session_scope(stack.factory) as s:
                peak[0] = max(peak[0], s.scalar(select(func.count()).select_from(Job).where(
                    Job.owner_id == a, Job.status == RUNNING)))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        b_job = stack.submit(b, xor(20))  # the quota holds a back, not b: b takes the free slot at once
        stack.wait(b_job)
        assert all(stack.job(j).status == "queued" for j in held)
        stack.cancel(long[0])  # a's running job ends: the message its release sends starts a held job
        stack.wait(held)
        stack.cancel(long[1])
        stack.wait(long[1])
    finally:
        stop.set()
        watcher.join()
    assert {(stack.job(j).status, stack.job(j).attempts) for j in held} == {("succeeded", 1)}
    assert peak[0] == 2
    assert stack.job(b_job).started_at < min(stack.job(j).started_at for j in held)
    assert utcnow() > stack.job(held[-1]).finished_at
