"""Fresh databases and brokers: a new PostgreSQL database and a private Redis namespace, both removed afterwards.

`POSTGRES_ADMIN_URL` and `REDIS_URL` come from TRAINYARD_TEST_POSTGRES / TRAINYARD_TEST_REDIS; `FAST` are the
lifecycle timings (leases, heartbeats, reconciler) under which tests see the service act within seconds.
"""

from __future__ import annotations

import contextlib
import os
import uuid
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


def _delete_redis_namespace(namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


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
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        _delete_redis_namespace(namespace)
