"""Issue 14 item 6: a database that hangs instead of refusing — it accepts connections and then forwards nothing,
closing nothing (a loopback proxy that stops forwarding; the kernel still acknowledges every byte, so TCP
keepalives and tcp_user_timeout cannot notice). The API answers 503 problem+json within its limits (each request
here gives up as a hang after HANG_BOUND s), a training worker rides it out, and everything works again once the
proxy forwards: the job succeeds in its first attempt with every epoch stored once, and a new job trains.
"""

from __future__ import annotations

import time

import pytest

from tests.support.cluster import cluster, moons_spec
from tests.support.processes import wait_for

pytestmark = pytest.mark.timeout(180)

HANG_SECONDS = 8.0  # how long the proxy stays silent
HANG_BOUND = 30  # a request that takes longer is a hang (the limits below make a 503 take 1-4 s)
LIMITS = {"db_connect_timeout_seconds": 2, "db_response_timeout_seconds": 2, "lease_seconds": 45.0}


def unavailable(c, method: str, path: str, **kw) -> float:
    """`method path` is answered 503 problem+json (not a hang: requests raises after HANG_BOUND s); its time."""
    started = time.monotonic()
    r = c.api(method, path, timeout=HANG_BOUND, **kw)
    took = time.monotonic() - started
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["status"] == 503
    return took


def test_a_hanging_database_is_503_and_the_worker_recovers_when_it_answers(fresh_postgres, tmp_path):
    with cluster(fresh_postgres, tmp_path / "home", db_proxy=True, **LIMITS) as c:
        c.start_worker("worker", wait=False)
        c.start_api()
        c.wait_worker_ready("worker")
        job_id = c.api("POST", "/jobs", json=moons_spec(4000, 500, name="through-the-hang")).json()["id"]
        wait_for(lambda: c.job(job_id).epoch > 0, 60, "the job to train", explain=c.log_tail)
        assert c.api("GET", f"/jobs/{job_id}").status_code == 200  # the API's pool holds a live connection

        c.proxy.hang()
        hung_at = time.monotonic()
        took = []
        while time.monotonic() - hung_at < HANG_SECONDS:
            took.append(unavailable(c, "GET", f"/jobs/{job_id}"))
            took.append(unavailable(c, "POST", "/jobs", json=moons_spec(10)))
            took.append(unavailable(c, "GET", "/health"))
        at_hang = c.job(job_id).epoch  # the test's own connection does not go through the proxy
        c.proxy.forward()
        forwarded_at = time.monotonic()

        job = c.wait(job_id, timeout=120)
        recovered = time.monotonic() - forwarded_at
        assert (job.status, job.error, job.attempts) == ("succeeded", None, 1), (job.error, c.log_tail())
        assert c.epochs(job_id) == list(range(1, job.epochs + 1))
        assert c.api("GET", f"/jobs/{job_id}").json()["status"] == "succeeded"
        after = c.api("POST", "/jobs", json=moons_spec(20, name="after-the-hang")).json()["id"]
        assert c.wait(after, timeout=60).status == "succeeded"
        assert "reporting failed; retrying" in c.log_text("worker")  # the worker saw the hang, kept training, retried
        assert "unhandled error" not in c.log_text("api")
        print(f"\nhang {HANG_SECONDS:g} s (connect limit 2 s, silence limit 2 s): {len(took)} API calls, all 503 "
              f"problem+json, first {took[0]:.2f} s, slowest {max(took):.2f} s, median "
              f"{sorted(took)[len(took) // 2]:.2f} s; job at epoch {at_hang} when hung, succeeded in attempt 1 "
              f"{recovered:.1f} s after forwarding resumed")
