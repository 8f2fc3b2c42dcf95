"""Shared fixtures: fresh databases and brokers for the store, worker, API and client tests.

- `sqlite_settings`: embedded settings in `tmp_path` (SQLite file + filesystem broker).
- `postgres_settings`: a fresh PostgreSQL database (dropped afterwards) + a Redis db
  with a unique key prefix, so concurrent test runs never see each other's queues.
- `db_settings`: parametrised over both; `migrated_settings`: the same, upgraded to head.
- `session_factory`: a sessionmaker bound to `migrated_settings`; `session`: one open session.
- `user_id`: a user created in that database.
- `fresh_postgres` (session scope): the context manager behind `postgres_settings`, for
  module-scoped fixtures; `fast_timings`: the lifecycle timings these fixtures use.
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


@pytest.fixture
def sqlite_settings(tmp_path) -> Settings:
    """Embedded settings under tmp_path: SQLite database and filesystem broker, fast lifecycle timings."""
    return Settings(home=tmp_path / "home", **FAST)


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


@pytest.fixture(scope="session")
def fresh_postgres():
    """`with fresh_postgres(home, **changes) as settings:` — for fixtures of wider scope than a test."""
    return fresh_postgres_settings


@pytest.fixture(scope="session")
def fast_timings() -> dict:
    """The Settings fields that make leases expire and the reconciler act within seconds."""
    return dict(FAST)


@pytest.fixture
def postgres_settings(tmp_path):
    """A fresh PostgreSQL database (dropped afterwards) and a private Redis namespace; fast lifecycle timings."""
    with fresh_postgres_settings(tmp_path / "home") as settings:
        yield settings


@pytest.fixture(params=["sqlite", "postgres"])
def db_settings(request) -> Settings:
    """Each test runs once on SQLite + filesystem broker and once on PostgreSQL + Redis."""
    return request.getfixturevalue(f"{request.param}_settings")


@pytest.fixture
def migrated_settings(db_settings) -> Settings:
    """`db_settings` with the schema upgraded to head."""
    from trainyard.store.migrate import upgrade

    upgrade(db_settings)
    return db_settings


@pytest.fixture
def session_factory(migrated_settings):
    """A sessionmaker on the migrated database (the engine is disposed afterwards)."""
    from trainyard.store.db import make_engine, make_sessionmaker

    engine = make_engine(migrated_settings)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def session(session_factory):
    """One open session; the test commits what it wants kept."""
    with session_factory() as session:
        yield session


@pytest.fixture
def user_id(session_factory) -> str:
    """The id of a user `alice` in the migrated database."""
    from trainyard.store.db import session_scope
    from trainyard.store.tokens import get_or_create_user

    with session_scope(session_factory) as session:
        return get_or_create_user(session=session, name="alice").id
