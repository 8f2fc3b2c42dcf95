"""Issue 6.2: losing the broker's state loses no job (DESIGN §5: the broker is not durable storage).

A private redis-server is flushed (messages and kombu's routing state gone) or killed and
started again, empty, while jobs are queued and a worker runs one; the reconciler sends the
queued jobs again and every job finishes. A submission while Redis is down is still
created (201) and runs once Redis is back.
"""

from __future__ import annotations

import time

import pytest

from tests.support.cluster import RedisServer, cluster, moons_spec, xor_spec
from tests.support.processes import wait_for

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def service(fresh_postgres, tmp_path_factory):
    """API, reconciler and one worker (concurrency 1) on a fresh database and a private Redis."""
    home = tmp_path_factory.mktemp("broker-loss") / "home"
    redis = RedisServer(home.parent / "redis")
    redis.start()
    try:
        with cluster(fresh_postgres, home, broker_url=redis.url) as c:
            c.start_reconciler()
            c.start_worker("worker", wait=False)
            c.start_api()
            c.wait_worker_ready("worker")
            c.redis = redis
            yield c
    finally:
        redis.stop()


def queue_length(c) -> int:
    with c.redis.client() as client:
        return client.llen(c.settings.broker_namespace + "cpu")


def running_and_queued(c, seeds=(2, 3, 4)) -> tuple[str, list[str]]:
    """One job training on the worker and three whose messages wait in Redis."""
    # Its own seed in each test: an identical spec would reuse the first test's result (store.reuse) and not run.
    running = c.create(moons_spec(1500, 100, name="running", seed=seeds[0]))
    queued = [c.create(xor_spec(200, name="queued", seed=seed)) for seed in seeds]
    wait_for(lambda: c.job(running).epoch > 0, 60, "the first job to train", explain=c.log_tail)
    assert [c.job(j).status for j in queued] == ["queued"] * 3 and queue_length(c) == 3
    return running, queued


def test_flushdb_drops_queued_messages_and_routing_yet_every_job_finishes(service):
    c = service
    running, queued = running_and_queued(c)
    with c.redis.client() as client:
        assert client.exists(f"{c.settings.broker_namespace}_kombu.binding.cpu")
        client.flushdb()
        assert client.dbsize() == 0  # messages, unacked index and exchange bindings are all gone
    flushed = time.monotonic()
    for job_id in [running, *queued]:
        job = c.wait(job_id, timeout=60)
        assert (job.status, job.attempts) == ("succeeded", 1), job.error
        assert c.epochs(job_id) == list(range(1, job.epochs + 1))
    assert "'republished': " in c.log_text("reconciler")
    print(f"\nFLUSHDB with 3 jobs queued: all 4 succeeded, attempts 1, {time.monotonic() - flushed:.1f} s later")


def test_redis_restart_and_submit_while_it_is_down(service):
    c = service
    running, queued = running_and_queued(c, seeds=(5, 6, 7))
    c.redis.stop()  # SIGKILL, no persistence: everything it held is lost
    started = time.monotonic()
    r = c.api("POST", "/jobs", json=xor_spec(200, name="submitted-while-down", seed=8))
    submit_seconds = time.monotonic() - started
    assert r.status_code == 201, r.text
    during = r.json()
    assert during["status"] == "queued" and r.headers["Location"].endswith(during["id"])
    assert c.api("GET", "/health").status_code == 503
    # The running job ends while Redis is down: its worker must not be left unable to fetch again.
    assert c.wait(running, timeout=60).status == "succeeded"
    c.redis.start()
    restarted = time.monotonic()
    for job_id in [running, *queued, during["id"]]:
        job = c.wait(job_id, timeout=60)
        assert (job.status, job.attempts) == ("succeeded", 1), job.error
        assert c.epochs(job_id) == list(range(1, job.epochs + 1))
    print(f"\nsubmit with Redis down: 201 in {submit_seconds:.2f} s; after the restart all 5 succeeded in "
          f"{time.monotonic() - restarted:.1f} s, each in one attempt")


def test_a_worker_takes_a_message_without_acknowledging_it(service):
    """Issue 11: on Redis a worker consumes without acks (trainyard.worker.app.NoAckAMQP) — a message costs its main
    process one BRPOP, where an early ack cost two transactions on kombu's unacked index (ZADD + HSET as it was
    taken, ZREM + HDEL as it was acked). The job runs all the same."""
    c = service
    with c.redis.client() as client:
        client.config_resetstat()
        job = c.create(xor_spec(3, name="no-ack", seed=11))
        assert c.wait(job).status == "succeeded"
        used = {name.removeprefix("cmdstat_") for name in client.info("commandstats")}
    assert "brpop" in used, used
    assert not used & {"multi", "exec", "zadd", "hset", "zrem", "hdel"}, used
