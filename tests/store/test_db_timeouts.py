"""Issue 14 item 6 in the store: a PostgreSQL that accepts connections and then says nothing is an
OperationalError (the API's 503) within the configured limits, never a wait without end; it works again as soon
as the database answers. The hang is a loopback proxy that stops forwarding without closing anything."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from trainyard.store.db import DATABASE_UNAVAILABLE, make_engine

from tests.support.cluster import TcpProxy


BOUND = 60  # seconds a call may take before the test calls it a hang (the limits below are 1-2 s)


def bounded(call):
    """`call()` in a thread: its result or exception; fails the test (instead of hanging it) after BOUND s."""
    out: dict = {}

    def run():
        try:
            out["value"] = call()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert not thread.is_alive(), f"still waiting after {BOUND} s: the database hang was not detected"
    return out


@pytest.fixture
def hung(postgres_settings):
    """(engine through a proxy, the proxy): connect 2 s, silence 1 s."""
    url = make_url(postgres_settings.database_url)
    proxy = TcpProxy((url.host, url.port or 5432))
    proxy.start()
    settings = postgres_settings.replace(
        database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        db_connect_timeout_seconds=2, db_response_timeout_seconds=1, db_keepalive_seconds=5,
        db_tcp_user_timeout_seconds=4)
    engine = make_engine(settings)
    yield engine, proxy
    proxy.stop()
    engine.dispose()


def select_one(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT 1")).scalar()


def test_connections_carry_the_timeouts(hung):
    engine, _ = hung
    with engine.connect() as conn:
        params = conn.connection.dbapi_connection.info.get_parameters()
        assert {k: params[k] for k in ("connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                                       "keepalives_count", "tcp_user_timeout")} == {
            "connect_timeout": "2", "keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "1",
            "keepalives_count": "3", "tcp_user_timeout": "4000"}
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "30s"
        assert conn.execute(text("SHOW lock_timeout")).scalar() == "30s"


def test_a_silent_server_is_an_error_for_pooled_and_new_connections_then_works_again(hung):
    engine, proxy = hung
    assert select_one(engine) == 1  # one connection in the pool, open through the proxy
    with engine.connect() as held:  # a connection in use when the database goes silent
        proxy.hang()
        out = bounded(lambda: held.execute(text("SELECT 2")).scalar())
        assert isinstance(out.get("error"), DATABASE_UNAVAILABLE), out
        assert "sent nothing for 1 s (db_response_timeout_seconds)" in str(out["error"])
    for _ in range(2):  # the pool's connection (pre-ping) and a new one (connect timeout) both give up
        out = bounded(lambda: select_one(engine))
        assert isinstance(out.get("error"), DATABASE_UNAVAILABLE), out
    proxy.forward()
    assert bounded(lambda: select_one(engine)) == {"value": 1}


def test_a_long_silent_statement_within_the_limit_is_not_cut(hung):
    engine, _ = hung
    with engine.connect() as conn:  # the server is silent 0.5 s of the 1 s allowed, then answers
        assert conn.execute(text("SELECT 7 FROM pg_sleep(0.5)")).scalar() == 7


def test_the_pools_ping_gives_up_after_the_connect_timeout_not_the_response_timeout(postgres_settings):
    """A statement may be silent for 300 s here, but the pre-ping of a pooled connection is as trivial as the
    handshake: it gives up after the 2 s connect timeout (then one connect attempt), far within BOUND."""
    url = make_url(postgres_settings.database_url)
    proxy = TcpProxy((url.host, url.port or 5432))
    proxy.start()
    engine = make_engine(postgres_settings.replace(
        database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        db_connect_timeout_seconds=2, db_response_timeout_seconds=300, db_ping_idle_seconds=0))  # always pinged
    try:
        assert select_one(engine) == 1  # pooled
        proxy.hang()
        out = bounded(lambda: select_one(engine))
        assert isinstance(out.get("error"), DATABASE_UNAVAILABLE), out
        proxy.forward()
        assert bounded(lambda: select_one(engine)) == {"value": 1}
    finally:
        proxy.stop()
        engine.dispose()


def backend_pid(engine) -> int:
    with engine.connect() as conn:  # the pool's one connection, handed back at once
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()


def kill_backend(postgres_settings, pid: int) -> None:
    killer = make_engine(postgres_settings)
    try:
        with killer.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
            conn.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
    finally:
        killer.dispose()


def test_only_a_connection_idle_past_db_ping_idle_seconds_is_pinged(postgres_settings):
    """Issue 11: a pooled connection handed back a moment ago is handed out again without a ping (a worker's tiny
    job paid two round trips for them), so a server-side death in that moment fails one statement and the pool
    then replaces its connections; one idle past `db_ping_idle_seconds` is pinged, found dead and replaced unseen."""
    recent = make_engine(postgres_settings.replace(db_ping_idle_seconds=60))
    try:
        kill_backend(postgres_settings, backend_pid(recent))
        with pytest.raises(DATABASE_UNAVAILABLE):  # not pinged: the dead connection met the statement
            select_one(recent)
        assert select_one(recent) == 1  # and the pool replaced it
    finally:
        recent.dispose()
    idle = make_engine(postgres_settings.replace(db_ping_idle_seconds=0.2))
    try:
        pid = backend_pid(idle)
        kill_backend(postgres_settings, pid)
        time.sleep(0.4)
        assert select_one(idle) == 1  # pinged: the dead connection was replaced before the statement
        assert backend_pid(idle) != pid
    finally:
        idle.dispose()


def test_a_failed_ping_makes_every_pooled_connection_stale(postgres_settings):
    """As pool_pre_ping did: a ping that fails means the database restarted or hung, so every connection of the pool
    older than it is replaced without a ping of its own (during a hang each one's ping would wait its full limit)."""
    engine = make_engine(postgres_settings.replace(db_ping_idle_seconds=0.2))
    pings, ping = [], engine.dialect.do_ping
    engine.dialect.do_ping = lambda connection: pings.append(connection) or ping(connection)
    try:
        with engine.connect() as first, engine.connect() as second:  # two pooled connections
            pids = [conn.execute(text("SELECT pg_backend_pid()")).scalar() for conn in (first, second)]
        for pid in pids:
            kill_backend(postgres_settings, pid)
        time.sleep(0.4)
        assert [select_one(engine), select_one(engine)] == [1, 1]  # both checkouts: dead connections replaced
        assert len(pings) == 1  # only the first was pinged; its failure made the other stale
        assert not {backend_pid(engine), backend_pid(engine)} & set(pids)
    finally:
        engine.dispose()
