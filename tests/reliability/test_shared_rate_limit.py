"""Issue 14 item 5: one per-token rate limit across API processes. Two API servers (separate processes) on one
PostgreSQL and one Redis: a token's window of requests holds in total, not once per process."""

from __future__ import annotations

import contextlib

import pytest
import requests

from trainyard.api.ratelimit import window
from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.migrate import upgrade
from trainyard.store.settings import load_settings
from trainyard.store.tokens import create_token

from tests.support.processes import free_port, start_process, stop_process, wait_for

pytestmark = pytest.mark.timeout(120)

# 10 requests in any 100 s: far longer than the test, so what is counted does not depend on its speed.
LIMITS = {"rate_limit_per_second": 0.1, "rate_limit_burst": 10}
SENT = 40


def test_the_window_keeps_the_settings_meaning_and_the_storage_follows_the_broker():
    defaults = load_settings({})
    assert window(defaults) == (200, 2)  # 100 per second on average, bursts of 200
    assert window(defaults.replace(**LIMITS)) == (10, 100)
    assert window(defaults.replace(rate_limit_per_second=1.0, rate_limit_burst=3)) == (3, 3)
    assert defaults.rate_limit_storage_url == "memory://"  # the embedded default: no server to share
    redis = load_settings({"TRAINYARD_BROKER_URL": "redis://cache:6379/0"})
    assert redis.rate_limit_storage_url == "redis://cache:6379/0"  # the deployment's Redis, shared by every process
    chosen = load_settings({"TRAINYARD_BROKER_URL": "redis://cache:6379/0",
                            "TRAINYARD_RATE_LIMIT_STORAGE_URL": "redis://other:6379/1"})
    assert chosen.rate_limit_storage_url == "redis://other:6379/1"


@contextlib.contextmanager
def api_servers(settings, logs, count: int = 2):
    """`count` API servers (`python -m trainyard.api.serve --workers 1`, each its own process), started together."""
    ports = [free_port() for _ in range(count)]
    procs = [start_process(settings, ["-m", "trainyard.api.serve", "--host", "127.0.0.1", "--port", str(port), "--workers",
                                      "1"], logs / f"api-{i}.log") for i, port in enumerate(ports)]
    urls = [f"http://127.0.0.1:{port}/api/v1" for port in ports]

    def answers(i: int) -> bool:
        assert procs[i].poll() is None, (logs / f"api-{i}.log").read_text()
        with contextlib.suppress(requests.RequestException):
            return requests.get(urls[i] + "/health", timeout=5).status_code in (200, 503)
        return False

    try:
        for i in range(count):
            wait_for(lambda i=i: answers(i), 60, f"API {i} to answer", 0.2)
        yield urls
    finally:
        for proc in procs:
            stop_process(proc)


def test_two_api_processes_share_one_limit(fresh_postgres, tmp_path):
    with fresh_postgres(tmp_path / "home", **LIMITS) as settings:
        assert settings.rate_limit_storage_url == settings.broker_url  # Redis, from the broker's URL
        upgrade(settings)
        engine = make_engine(settings)
        with session_scope(make_sessionmaker(engine)) as s:
            token, _ = create_token(session=s, user_name="alice")
            other, _ = create_token(session=s, user_name="bob")
        engine.dispose()
        logs = tmp_path / "logs"
        logs.mkdir()
        with api_servers(settings, logs) as (one, two):
            auth = {"Authorization": f"Bearer {token}"}
            answers = [requests.get((one, two)[i % 2] + "/jobs", headers=auth, timeout=30) for i in range(SENT)]
            accepted = [(i % 2, r.status_code) for i, r in enumerate(answers) if r.status_code == 200]
            refused = [r for r in answers if r.status_code != 200]
            print(f"\n{len(accepted)} of {SENT} requests accepted across 2 API processes "
                  f"(window {window(settings)[0]} per {window(settings)[1]} s)")
            assert len(accepted) == 10  # one window in total (a per-process bucket would accept 20)
            assert {server for server, _ in accepted} == {0, 1}  # both processes served some of them
            assert {r.status_code for r in refused} == {429}
            body = refused[0].json()
            assert refused[0].headers["Content-Type"].startswith("application/problem+json")
            assert "rate_limit_per_second" in body["detail"] and "across every API process" in body["detail"]
            assert 1 <= int(refused[0].headers["Retry-After"]) <= 100
            assert requests.get(two + "/jobs", headers={"Authorization": f"Bearer {other}"},
                                timeout=30).status_code == 200  # another token has its own window
