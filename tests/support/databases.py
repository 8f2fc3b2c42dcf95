"""Fresh databases and brokers: a new PostgreSQL database and a private Redis namespace, both removed afterwards.

`POSTGRES_ADMIN_URL` and `REDIS_URL` come from TRAINYARD_TEST_POSTGRES / TRAINYARD_TEST_REDIS; `FAST` are the
lifecycle timings (leases, heartbeats, reconciler) under which tests see the service act within seconds.

`copy_migrated_sqlite(settings)` puts a copy of a SQLite database migrated once per run where a test's goes (the
API fixtures, `migrated_settings`). A PostgreSQL database is dropped in the background once its test is done
(`DROP DATABASE ... WITH (FORCE)` takes 0.3 to 1.5 s on a busy machine, and nothing needs to wait for it);
`finish_drops()` waits for every drop and raises the first failure.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from trainyard.store.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get("TRAINYARD_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TRAINYARD_TEST_REDIS", "redis://127.0.0.1:6379/9")
# Fast lifecycle timings so tests see leases expire and the reconciler act within seconds.
FAST = dict(lease_seconds=3.0, heartbeat_seconds=0.2, reconcile_interval_seconds=0.5, republish_after_seconds=2.0,
            worker_live_seconds=5.0, db_statement_timeout_seconds=30.0)


def _postgres_admin():
    import sqlalchemy

    engine = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT",
                                      connect_args={"connect_timeout": 3})
    try:
        engine.connect().close()
    except sqlalchemy.exc.OperationalError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    return engine


def _redis_reachable() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()


def delete_redis_keys(url: str, namespace: str) -> None:
    """Delete every key of `namespace` (a test's broker prefix) in the Redis at `url`."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


_drops = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-database")
_pending: list[Future] = []


def _drop(admin, name: str, namespace: str) -> None:
    import sqlalchemy

    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
    delete_redis_keys(REDIS_URL, namespace)


def finish_drops() -> None:
    """Wait until every database handed to the background has been dropped; raise the first drop that failed."""
    done, _pending[:] = list(_pending), []
    for future in done:
        future.result()


@contextlib.contextmanager
def fresh_postgres_settings(home: Path, **changes) -> Iterator[Settings]:
    """Settings on a new PostgreSQL database and Redis namespace, both removed on exit (skips if unreachable)."""
    import sqlalchemy

    admin = _postgres_admin()
    _redis_reachable()
    name = f"trainyard_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    namespace = f"ty-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield Settings(home=home, database_url=url, broker_url=REDIS_URL, broker_namespace=namespace,
                       **{**FAST, **changes})
    finally:
        _pending.append(_drops.submit(_drop, admin, name, namespace))  # the next test starts meanwhile


_migrated_sqlite: list[Path] = []  # the database file migrated once in this run


def copy_migrated_sqlite(settings) -> None:
    """Where `settings` names a SQLite file that does not exist yet, put a copy of one migrated to head in this run:
    migrating a new file takes 0.3 to 1 s a test, copying one a millisecond (the schema and rows are the same)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or Path(url.database).exists():
        return
    if not _migrated_sqlite:
        from trainyard.store.migrate import upgrade

        home = Path(tempfile.mkdtemp(prefix="trainyard-migrated-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        upgrade(Settings(home=home))  # every connection closed: the WAL is folded into the file
        _migrated_sqlite.append(home / "trainyard.db")
    target = Path(url.database)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated_sqlite[0], target)
