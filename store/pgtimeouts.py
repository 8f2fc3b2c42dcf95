"""PostgreSQL connections that never wait forever: a database that refuses, hangs or vanishes is an error within
seconds (the API answers 503, a worker retries), not a request or a worker stalled for good.

- connecting: libpq's `connect_timeout` (`db_connect_timeout_seconds`) bounds the whole handshake, also when a
  server (or a proxy in front of it) accepts the TCP connection and then says nothing;
- a peer gone without a word (host down, network partition): TCP keepalives after `db_keepalive_seconds` idle,
  and `tcp_user_timeout` (`db_tcp_user_timeout_seconds`) drops a connection whose sent data goes unacknowledged;
- a server that keeps the connection open but stops answering (hung, or a proxy that stopped forwarding, where
  the kernel still acknowledges every byte, so neither TCP option fires): `ResponseLimitedConnection` gives up on
  a statement once the server has been silent for `db_response_timeout_seconds`, closes the connection (its
  state is unknown) and raises OperationalError; SQLAlchemy then discards it from the pool;
- a server that answers but is slow or blocked on a lock: `statement_timeout` and `lock_timeout`
  (`db_statement_timeout_seconds`), enforced by the server itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from typing import Any

import psycopg
from psycopg import errors
from psycopg.waiting import Ready
from sqlalchemy import event
from sqlalchemy.exc import InvalidatePoolError

from trainyard.store.settings import Settings

USED_AT = "trainyard_used_at"  # a pooled connection's info: when it last answered (time.monotonic)
KEEPALIVE_PROBES = 3  # unanswered probes before the kernel gives up on the connection


def connect_args(settings: Settings) -> dict[str, Any]:
    """libpq parameters for every connection: connect timeout, keepalives, tcp_user_timeout, server-side timeouts."""
    statement_ms = int(settings.db_statement_timeout_seconds * 1000)
    keepalive = max(1, round(settings.db_keepalive_seconds))
    return {
        "connect_timeout": max(1, round(settings.db_connect_timeout_seconds)),
        "keepalives": 1,
        "keepalives_idle": keepalive,
        "keepalives_interval": max(1, keepalive // KEEPALIVE_PROBES),
        "keepalives_count": KEEPALIVE_PROBES,
        "tcp_user_timeout": int(settings.db_tcp_user_timeout_seconds * 1000),
        "options": f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}",
    }


class ServerSilent(Exception):
    """The server sent nothing for the connection's response limit."""


def _limited(gen: Generator, seconds: float) -> Generator:
    """`gen` (a psycopg wait generator), failing with ServerSilent once the socket has been idle `seconds`.

    psycopg's wait functions wake every interval and send Ready.NONE when nothing happened; any other value means
    the socket made progress (a statement that streams a large result or a large upload never counts as silent).
    """
    deadline = time.monotonic() + seconds
    try:
        state = next(gen)
        while True:
            ready = yield state
            if ready != Ready.NONE:
                deadline = time.monotonic() + seconds
            elif time.monotonic() >= deadline:
                raise ServerSilent
            state = gen.send(ready)
    except StopIteration as done:
        return done.value


class ResponseLimitedConnection(psycopg.Connection):
    """A psycopg connection whose every statement gives up after `response_timeout` seconds of server silence."""

    response_timeout: float = 10.0

    def wait(self, gen, interval: float = 0.1, timeout: float | None = None):  # type: ignore[override]
        try:
            return super().wait(_limited(gen, self.response_timeout), interval=interval, timeout=timeout)
        except ServerSilent:
            self.pgconn.finish()  # mid-protocol: the connection can never be used again
            raise errors.OperationalError(
                f"the database sent nothing for {self.response_timeout:g} s (db_response_timeout_seconds); "
                "the connection was closed") from None


def ping_idle_connections(engine, settings: Settings) -> None:
    """The pool's pessimistic disconnect check (a ping before a pooled connection is handed out), for connections
    idle `db_ping_idle_seconds` or longer only: one handed back a moment ago has just answered a statement, and a
    worker's two transactions per tiny job paid two extra round trips for pinging it (issue 11). A server lost in
    that moment fails the next statement instead, and SQLAlchemy then drops every connection of the pool older
    than the error: the API answers that request 503; a worker retries the claim once, keeps a trained result and
    retries it, and leaves a job whose data it could not read to its lease (trainyard.worker.runner).

    A ping gives up after min(db_response_timeout_seconds, db_connect_timeout_seconds) of silence: it is as trivial
    as the handshake, and after a hang each API process's first request pays for it and then for one connect
    attempt. A failed ping, as pool_pre_ping's, marks every connection of the pool older than it as stale
    (InvalidatePoolError on checkout: the database most likely restarted or hung), and the pool connects anew."""
    seconds = min(settings.db_response_timeout_seconds, settings.db_connect_timeout_seconds)
    idle = settings.db_ping_idle_seconds

    def limited_ping(dbapi_connection) -> None:
        ping = engine.dialect.do_ping
        if not isinstance(dbapi_connection, ResponseLimitedConnection):
            ping(dbapi_connection)
            return
        dbapi_connection.response_timeout = seconds  # this connection only, for this ping
        try:
            ping(dbapi_connection)
        finally:
            del dbapi_connection.response_timeout  # back to the class's limit

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection, record) -> None:
        record.info[USED_AT] = time.monotonic()  # it has just answered the handshake

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:
        if record is not None:
            record.info[USED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:
        if time.monotonic() - record.info.get(USED_AT, -math.inf) < idle:
            return
        try:
            limited_ping(dbapi_connection)
        except Exception as exc:
            raise InvalidatePoolError(f"a pooled connection did not answer a ping: {exc}") from exc


def connection_class(settings: Settings) -> type[ResponseLimitedConnection]:
    """The connection class for `settings` (its response limit as a class attribute: one class per limit)."""
    return type("ResponseLimitedConnection", (ResponseLimitedConnection,),
                {"response_timeout": settings.db_response_timeout_seconds})
