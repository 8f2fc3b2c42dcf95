"""Engines and sessions: `make_engine(settings)`, `make_sessionmaker(engine)`, `session_scope(factory)`.

SQLite (the embedded default) is shared by the API, workers, the reconciler and
`trainyard token`, each a separate process. So that none of them ever sees "database is
locked": the journal is WAL (readers never block the writer), every connection waits
up to `db_statement_timeout_seconds` for the write lock (busy_timeout), and every
transaction that may write starts with BEGIN IMMEDIATE — a deferred transaction that
reads and then writes can fail at once with SQLITE_BUSY instead of waiting, when another
process wrote in between. The price: SQLite write transactions are serialised, so keep
them short (one per operation; never sleep, read a request body or build a response with
one open). Sessions that only read (`read_only(engine)`) begin a plain deferred
transaction, which in WAL mode never takes the write lock and never blocks a writer.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from trainyard.core.jsonsafe import json_safe
from trainyard.store.green import green
from trainyard.store.private import private_sqlite_file
from trainyard.store.settings import Settings


# The database cannot be reached or cannot answer now (refused or dropped connection, connect or statement
# timeout, a locked SQLite file, an exhausted pool): nothing is wrong with the request or the job, so the API
# answers 503 and the worker keeps what it has and writes it again.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)


def json_dumps(value: Any) -> str:
    """JSON for every JSON column: non-finite floats become null (never bare NaN) and numpy values plain.

    The fast path serialises as is; only a value that fails it (NaN, a numpy scalar)
    pays for the recursive clean-up — history rows are usually clean already.
    """
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(json_safe(value), allow_nan=False)


GREEN_BUSY_MS = 20  # under gevent, SQLite blocks the event loop at most this long per attempt
READ_ONLY = "trainyard_read_only"  # execution option: this connection's transactions only read
NO_WAIT = "trainyard_no_wait"  # execution option: on SQLite, "database is locked" at once rather than waiting


def read_only(engine: Engine) -> Engine:
    """The engine for sessions that only read: autocommit on PostgreSQL (no BEGIN/ROLLBACK round trips), a deferred
    transaction on SQLite (no write lock). Writing through it on SQLite may fail with "database is locked"."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine.execution_options(**{READ_ONLY: True})


def no_wait(engine: Engine) -> Engine:
    """The engine for bookkeeping writes that are skipped rather than queued behind another writer: on SQLite
    BEGIN IMMEDIATE fails at once while someone holds the write lock (PostgreSQL locks rows, not the database)."""
    if engine.dialect.name == "postgresql":
        return engine
    return engine.execution_options(**{NO_WAIT: True})


def make_engine(settings: Settings) -> Engine:
    """An engine for `settings.database_url`: on PostgreSQL a pool that pings idle connections, and timeouts
    (store.pgtimeouts: never a wait without end); WAL on SQLite."""
    if settings.is_sqlite:
        return _sqlite_engine(settings)
    from trainyard.store import pgtimeouts

    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        json_serializer=json_dumps,
        connect_args=pgtimeouts.connect_args(settings),  # connect, keepalive and server-side timeouts
    )
    connection_class = pgtimeouts.connection_class(settings)
    pgtimeouts.ping_idle_connections(engine, settings)  # instead of pool_pre_ping: idle connections only

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):  # a hung server is an error, not a stall
        return connection_class.connect(*cargs, **cparams)

    return engine


def _sqlite_engine(settings: Settings) -> Engine:
    path = settings.database_url.split("///", 1)[-1]
    if path and path != ":memory:":
        private_sqlite_file(Path(path))  # 0600 before SQLite creates it (and its WAL) with the umask's mode
    # NullPool: a connection is a file handle, cheap to open, and none survives into a forked child.
    engine = create_engine(
        settings.database_url,
        poolclass=NullPool,
        json_serializer=json_dumps,
        connect_args={"timeout": settings.db_statement_timeout_seconds, "check_same_thread": False},
    )
    busy_ms = int(settings.db_statement_timeout_seconds * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's begin event below emit BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        if green():  # SQLite's own wait would stop every connection of the process: wait in _begin_immediate
            cursor.execute(f"PRAGMA busy_timeout = {GREEN_BUSY_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        options = connection.get_execution_options()
        if options.get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        elif options.get(NO_WAIT):
            connection.exec_driver_sql("PRAGMA busy_timeout = 0")  # NullPool: this connection ends with the session
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif green():
            _begin_immediate(connection, settings.db_statement_timeout_seconds)
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _begin_immediate(connection, timeout: float) -> None:
    """BEGIN IMMEDIATE, waiting for another process's write lock in short cooperative sleeps (under gevent), so
    the other connections of this process are served meanwhile; "database is locked" after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)  # gevent's sleep: the event loop runs


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (the API serialises them after committing)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
