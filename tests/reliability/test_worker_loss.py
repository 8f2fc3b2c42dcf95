"""Issue 6.1: a worker SIGKILLed mid-training loses no job (celery#3541, #7924 are what happens without the database).

Jobs resume from their last checkpoint on another attempt, their history has every epoch
once and in order, and a job that kills its worker on every attempt ends failed with
`worker_lost` after `max_attempts` while the workers go on serving others.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.support.cluster import children, cluster, moons_spec, xor_spec
from tests.support.processes import wait_for

pytestmark = pytest.mark.timeout(150)

EPOCHS, EVERY = 1500, 50


def checkpointed(c, job_id: str, epoch: int) -> bool:
    job = c.job(job_id)
    return job.status == "running" and c.checkpoint_epoch(job_id) >= epoch


def assert_succeeded_once_each_epoch(c, job_ids: list[str], epochs: int = EPOCHS) -> dict[str, int]:
    """Every job succeeded with epochs 1..`epochs` stored once, in order; their attempts."""
    attempts = {}
    for job_id in job_ids:
        job = c.wait(job_id, timeout=90)
        assert (job.status, job.error, job.epoch) == ("succeeded", None, epochs), c.log_tail()
        assert c.epochs(job_id) == list(range(1, epochs + 1))
        attempts[job_id] = job.attempts
    return attempts


@pytest.fixture(scope="module")
def two_workers(fresh_postgres, tmp_path_factory):
    """A reconciler and two workers of concurrency 1 (each in its own process group) on a fresh database."""
    with cluster(fresh_postgres, tmp_path_factory.mktemp("two-workers") / "home") as c:
        c.start_reconciler()
        for name in ("worker-1", "worker-2"):
            c.start_worker(name, wait=False)
        for name in ("worker-1", "worker-2"):
            c.wait_worker_ready(name)
        yield c


def test_killed_pool_child_job_resumes_from_its_last_checkpoint(two_workers):
    c = two_workers
    jobs = [c.create(moons_spec(EPOCHS, EVERY, seed=seed)) for seed in (1, 2, 3)]  # two train, one waits
    victim, other = jobs[0], jobs[1]
    wait_for(lambda: checkpointed(c, victim, 2 * EVERY) and c.job(other).status == "running", 60,
             "two jobs training, the first past its second checkpoint", explain=c.log_tail)
    job = c.job(victim)
    (child,) = children(c.worker_pid(job.worker))  # concurrency 1: the pool process training the victim
    os.kill(child, signal.SIGKILL)
    # Read at once: a second attempt cannot start before the lease expires, but it may soon after,
    # and its own checkpoints would then be read as the killed attempt's.
    at_kill = c.checkpoint_epoch(victim)  # the last checkpoint the killed attempt saved
    wait_for(lambda: not os.path.exists(f"/proc/{child}"), 10, "the pool process to die")

    attempts = assert_succeeded_once_each_epoch(c, jobs)
    assert attempts == {victim: 2, other: 1, jobs[2]: 1}
    (first, _), (second, resumed_after) = c.resumes(victim)
    assert (first, second) == (1, 2)
    # A checkpoint write already on its way to the database when the process died may still commit.
    assert at_kill >= 2 * EVERY and resumed_after in (at_kill, at_kill + EVERY), (resumed_after, at_kill)
    print(f"\nkilled pool child at checkpoint {at_kill}; attempt 2 resumed after epoch {resumed_after}; "
          f"attempts {list(attempts.values())}")


class Assassin(threading.Thread):
    """The test's stand-in for a job that crashes its process: SIGKILLs the pool process running each attempt.

    It watches the job's row; when a new attempt is running it asks the workers table for the
    claiming worker's main process and kills that worker's pool child (concurrency 1: the one
    running the job). Production code knows nothing of it.
    """

    def __init__(self, c, job_id: str):
        super().__init__(daemon=True, name="assassin")
        self.c, self.job_id = c, job_id
        self.kills: list[tuple[int, str]] = []  # (attempt, worker)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.02):
            job = self.c.job(self.job_id)
            if job.is_finished:
                return
            if job.status == "running" and job.attempts > len(self.kills):
                for child in children(self.c.worker_pid(job.worker)):
                    os.kill(child, signal.SIGKILL)
                self.kills.append((job.attempts, job.worker))


def test_job_that_kills_its_worker_every_time_fails_worker_lost(two_workers):
    c = two_workers
    doomed = c.create(xor_spec(1_000_000, EVERY, name="doomed"))
    assassin = Assassin(c, doomed)
    assassin.start()
    bystanders = [c.create(xor_spec(300, name="bystander", seed=seed)) for seed in (4, 5)]
    try:
        job = c.wait(doomed, timeout=90)
    finally:
        assassin.stopping.set()
        assassin.join()
    max_attempts = c.settings.max_attempts
    assert (job.status, job.error["code"], job.attempts) == ("failed", "worker_lost", max_attempts), job.error
    assert [attempt for attempt, _ in assassin.kills] == list(range(1, max_attempts + 1))
    assert job.error["message"] == f"the worker running attempt {max_attempts} of {max_attempts} stopped reporting"
    # The workers replaced their pool processes and went on with other work.
    assert assert_succeeded_once_each_epoch(c, bystanders, 300) == {b: 1 for b in bystanders}
    assert all(c.processes[name].poll() is None for name in ("worker-1", "worker-2"))
    print(f"\npoison job killed {len(assassin.kills)} pool processes on {sorted({w for _, w in assassin.kills})}; "
          f"ended {job.status}/{job.error['code']} after {job.attempts} attempts")


def test_killed_worker_process_group_loses_no_job(fresh_postgres, tmp_path):
    with cluster(fresh_postgres, tmp_path / "home") as c:
        c.start_reconciler()
        old = c.start_worker("worker-old", concurrency=2)
        jobs = [c.create(moons_spec(EPOCHS, EVERY, seed=seed)) for seed in (1, 2, 3)]
        wait_for(lambda: all(checkpointed(c, j, 2 * EVERY) for j in jobs[:2]), 60,
                 "two jobs past their second checkpoint", explain=c.log_tail)
        assert c.job(jobs[2]).status == "queued"  # a busy worker fetches nothing: its message is still in Redis
        pool = children(old.pid)
        assert len(pool) == 2
        os.killpg(old.pid, signal.SIGKILL)  # main process and pool children; nothing of the running jobs is in Redis
        old.wait()
        wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pool), 10, "the pool processes to die")
        at_kill = {j: c.checkpoint_epoch(j) for j in jobs[:2]}  # the last checkpoints the killed attempts saved
        killed_at = time.monotonic()
        c.start_worker("worker-new", concurrency=2)
        attempts = assert_succeeded_once_each_epoch(c, jobs)
        took = time.monotonic() - killed_at
        assert attempts == {jobs[0]: 2, jobs[1]: 2, jobs[2]: 1}
        for job_id, checkpoint in at_kill.items():
            (first, _), (second, resumed_after) = c.resumes(job_id)
            assert (first, second) == (1, 2) and checkpoint >= 2 * EVERY, (first, second, checkpoint)
            assert resumed_after in (checkpoint, checkpoint + EVERY), (resumed_after, checkpoint)  # one may be in flight
            assert f"job {job_id}: attempt 2 on cpu-" in c.log_text("worker-new")
        print(f"\nkilled the whole worker at checkpoints {sorted(at_kill.values())}; resumed after "
              f"{sorted(c.resumes(j)[1][1] for j in at_kill)} on a fresh worker; all done {took:.1f} s after the kill")
