"""Before authentication, per client address (issue 12 item 7; red team #5): bad tokens get 429s that cost no
database work, other addresses are still served, and X-Forwarded-For counts only behind `trusted_proxies`.

The requests come through Flask's test client with a chosen REMOTE_ADDR (loopback addresses; no traffic is sent).
On PostgreSQL the counters live in Redis (`rate_limit_storage_url`), as in the production compose file.
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import event

from trainyard.store.settings import SettingsError, load_settings

from tests.support.api import make_api, problem

ATTACKER, OTHER, PROXY = "127.0.0.7", "127.0.0.8", "127.0.0.9"
BUDGET = 20


class DatabaseWork:
    """Counts what reaches the database through `engine`: connections checked out, transactions, statements."""

    def __init__(self, engine):
        self.count = 0
        for name in ("checkout", "begin", "before_cursor_execute"):
            target = engine.pool if name == "checkout" else engine
            event.listen(target, name, self._seen)

    def _seen(self, *_args, **_kw) -> None:
        self.count += 1


def redis_keys(settings, pattern: str) -> list[bytes]:
    import redis

    client = redis.Redis.from_url(settings.broker_url)
    try:
        return list(client.scan_iter(match=pattern, count=1000))
    finally:
        client.close()


def bad_token() -> dict:
    return {"Authorization": f"Bearer ty_{secrets.token_urlsafe(32)}"}


def get(api, headers: dict, address: str, path: str = "/api/v1/jobs", **environ):
    return api.client.get(path, headers=headers, environ_base={"REMOTE_ADDR": address, **environ})


@pytest.fixture
def throttled(db_settings):
    """An app allowing BUDGET failed authentications per address per hour (counters in Redis on PostgreSQL)."""
    storage = "memory://" if db_settings.uses_filesystem_broker else db_settings.broker_url
    api = make_api(db_settings, auth_failures_per_address=BUDGET, auth_failure_window_seconds=3600,
                   rate_limit_storage_url=storage)
    yield api
    api.engine.dispose()


def test_bad_tokens_from_one_address_are_refused_before_any_database_work(throttled):
    api = throttled
    work = DatabaseWork(api.engine)
    statuses = [get(api, bad_token(), ATTACKER).status_code for _ in range(BUDGET)]
    assert statuses == [401] * BUDGET
    looked_up = work.count
    assert looked_up >= BUDGET  # each unknown token was looked up in the database

    refused = [get(api, bad_token(), ATTACKER) for _ in range(1200 - BUDGET)]
    assert [r.status_code for r in refused] == [429] * (1200 - BUDGET)
    assert work.count == looked_up  # not one connection, transaction or statement for the 1,180 refusals
    body = problem(refused[-1], 429)
    assert body["type"] == "urn:trainyard:problem:rate-limited"
    assert "auth_failures_per_address" in body["detail"] and f"{BUDGET} per 3600 s" in body["detail"]
    assert ATTACKER in body["detail"]
    assert 3500 <= int(refused[-1].headers["Retry-After"]) <= 3600
    if not api.settings.uses_filesystem_broker:  # the counters are in Redis, under the deployment's key prefix
        assert redis_keys(api.settings, f"{api.settings.broker_namespace}limits:*") != []

    # The address is refused whatever it sends, a valid token included; another address is served as before.
    assert problem(get(api, {"Authorization": f"Bearer {api.alice.token}"}, ATTACKER), 429)
    r = get(api, {"Authorization": f"Bearer {api.alice.token}"}, OTHER)
    assert r.status_code == 200 and r.get_json()["items"] == []
    assert problem(get(api, bad_token(), OTHER), 401)["type"] == "urn:trainyard:problem:unauthorized"
    # Routes that need no token are not throttled.
    assert get(api, {}, ATTACKER, "/api/v1/health").status_code == 200


def test_only_failed_authentications_use_the_budget(throttled):
    api = throttled
    alice = {"Authorization": f"Bearer {api.alice.token}"}
    assert [get(api, alice, ATTACKER).status_code for _ in range(3 * BUDGET)] == [200] * (3 * BUDGET)
    assert [get(api, bad_token(), ATTACKER).status_code for _ in range(BUDGET)] == [401] * BUDGET
    assert get(api, bad_token(), ATTACKER).status_code == 429


def test_x_forwarded_for_is_ignored_without_trusted_proxies(throttled):
    api = throttled
    for i in range(BUDGET):  # a client cannot escape its budget by inventing forwarded addresses
        assert get(api, bad_token(), PROXY, HTTP_X_FORWARDED_FOR=f"127.1.0.{i}").status_code == 401
    r = get(api, bad_token(), PROXY, HTTP_X_FORWARDED_FOR="127.1.1.1")
    assert PROXY in problem(r, 429)["detail"]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(sqlite_settings):
    api = make_api(sqlite_settings, auth_failures_per_address=BUDGET, auth_failure_window_seconds=3600,
                   trusted_proxies=1)
    # The proxy appends the address it saw; what the client wrote before it is not believed.
    spoofed = {"HTTP_X_FORWARDED_FOR": f"{OTHER}, {ATTACKER}"}
    assert [get(api, bad_token(), PROXY, **spoofed).status_code for _ in range(BUDGET)] == [401] * BUDGET
    assert ATTACKER in problem(get(api, bad_token(), PROXY, **spoofed), 429)["detail"]
    r = get(api, {"Authorization": f"Bearer {api.alice.token}"}, PROXY, HTTP_X_FORWARDED_FOR=OTHER)
    assert r.status_code == 200  # the same proxy, another client: served
    api.engine.dispose()


def test_an_ipv6_client_is_counted_by_its_64_prefix(sqlite_settings):
    api = make_api(sqlite_settings, auth_failures_per_address=BUDGET, auth_failure_window_seconds=3600)
    for i in range(BUDGET):  # rotating through its /64 does not give a client more tries
        assert get(api, bad_token(), f"fd00:1:2:3::{i + 1:x}").status_code == 401
    assert "fd00:1:2:3::/64" in problem(get(api, bad_token(), "fd00:1:2:3:ffff::1"), 429)["detail"]
    assert get(api, bad_token(), "fd00:1:2:4::1").status_code == 401  # the next /64 is someone else
    api.engine.dispose()


def test_throttle_settings_are_read_and_checked():
    s = load_settings({"TRAINYARD_AUTH_FAILURES_PER_ADDRESS": "5", "TRAINYARD_AUTH_FAILURE_WINDOW_SECONDS": "10",
                       "TRAINYARD_RATE_LIMIT_STORAGE_URL": "redis://redis:6379/1", "TRAINYARD_TRUSTED_PROXIES": "1"})
    assert (s.auth_failures_per_address, s.auth_failure_window_seconds, s.rate_limit_storage_url,
            s.trusted_proxies) == (5, 10, "redis://redis:6379/1", 1)
    defaults = load_settings({})
    assert (defaults.auth_failures_per_address, defaults.auth_failure_window_seconds,
            defaults.rate_limit_storage_url, defaults.trusted_proxies) == (30, 60, "memory://", 0)
    for name, value in [("RATE_LIMIT_STORAGE_URL", "postgresql://x/y"), ("TRUSTED_PROXIES", "-1"),
                        ("AUTH_FAILURES_PER_ADDRESS", "0"), ("AUTH_FAILURE_WINDOW_SECONDS", "0")]:
        with pytest.raises(SettingsError, match=f"TRAINYARD_{name}"):
            load_settings({f"TRAINYARD_{name}": value})
