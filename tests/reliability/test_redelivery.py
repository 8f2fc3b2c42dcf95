"""Issue 6.3: a job that outlives Redis's visibility timeout trains once (celery#5935), and its time limit holds.

The worker runs with a 1 s visibility timeout (tests/support/shortvisibility.py) and two pool processes,
so a message delivered again would find a free process. A long job also gets a second
message for its id while it trains — what a redelivery is — and the claim refuses it.
Then a worker with a 5 s TRAINYARD_JOB_TIMEOUT_SECONDS gets two runaway jobs: both end
failed with `timeout` and the worker goes on to the next job.
"""

from __future__ import annotations


import pytest

from trainyard.worker.publish import publish_job

from tests.support.cluster import cluster, moons_spec, xor_spec
from tests.support.processes import stop_process, wait_for

pytestmark = pytest.mark.timeout(120)

VISIBILITY_SECONDS = 1.0
TIME_LIMIT_SECONDS = 5.0
EPOCHS = 3000
SHORT_VISIBILITY_WORKER = ("-u", "-m", "tests.support.shortvisibility", str(VISIBILITY_SECONDS))


def test_long_job_trains_once_and_runaway_jobs_time_out(fresh_postgres, tmp_path):
    with cluster(fresh_postgres, tmp_path / "home") as c:
        c.start_reconciler()
        c.start_worker("worker", concurrency=2, program=SHORT_VISIBILITY_WORKER)

        # A job several visibility timeouts long: restored messages and a duplicate do not train it again.
        long = c.create(moons_spec(EPOCHS, 100, name="long"))
        wait_for(lambda: c.job(long).epoch > 0, 60, "the long job to train", explain=c.log_tail)
        publish_job(celery=c.celery, job_id=long, device="cpu")  # a second message for the running job
        dropped = f"job {long}: not claimable"
        wait_for(lambda: dropped in c.log_text("worker"), 30, "the duplicate to be dropped", explain=c.log_tail)
        job = c.wait(long, timeout=60)
        trained = (job.finished_at - job.started_at).total_seconds()
        assert (job.status, job.attempts) == ("succeeded", 1), job.error
        assert trained > 2 * VISIBILITY_SECONDS
        assert c.epochs(long) == list(range(1, EPOCHS + 1))
        assert c.log_text("worker").count(f"job {long}: attempt ") == 1

        # Runaway jobs fill both pool processes; each stops at the time limit and the worker takes the next job.
        stop_process(c.processes["worker"])
        c.start_worker("limited", concurrency=2, program=SHORT_VISIBILITY_WORKER,
                       settings=c.settings.replace(job_timeout_seconds=TIME_LIMIT_SECONDS))
        runaways = [c.create(xor_spec(1_000_000, 1000, name="runaway", seed=seed)) for seed in (1, 2)]
        after = c.create(xor_spec(200, name="after"))
        for job_id in runaways:
            job = c.wait(job_id, timeout=60)
            took = (job.finished_at - job.started_at).total_seconds()
            assert (job.status, job.error["code"], job.attempts) == ("failed", "timeout", 1), job.error
            assert TIME_LIMIT_SECONDS <= took < TIME_LIMIT_SECONDS + 5, took
            assert c.epochs(job_id) == list(range(1, job.epoch + 1)) and job.epoch > 0
        next_job = c.wait(after, timeout=60)
        assert (next_job.status, next_job.attempts) == ("succeeded", 1), next_job.error
        assert next_job.started_at >= min(c.job(r).finished_at for r in runaways)
        print(f"\nlong job: trained once in {trained:.1f} s (visibility timeout {VISIBILITY_SECONDS:g} s), "
              f"duplicate dropped; runaways failed/timeout after "
              f"{[round((c.job(r).finished_at - c.job(r).started_at).total_seconds(), 1) for r in runaways]} s "
              f"(limit {TIME_LIMIT_SECONDS:g} s); the next job then succeeded")
