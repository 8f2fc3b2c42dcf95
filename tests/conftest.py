"""Shared fixtures: fresh databases and brokers for the store, worker, API and client tests, and the app on them.

- `sqlite_settings`: embedded settings in `tmp_path` (SQLite file + filesystem broker).
- `postgres_settings`: a fresh PostgreSQL database (dropped afterwards) + a Redis db
  with a unique key prefix, so concurrent test runs never see each other's queues.
- `db_settings`: parametrised over both; `migrated_settings`: the same, upgraded to head.
- `session_factory`: a sessionmaker bound to `migrated_settings`; `session`: one open session.
- `user_id`: a user created in that database.
- `fresh_postgres` (session scope): the context manager behind `postgres_settings`, for
  module-scoped fixtures; `fast_timings`: the lifecycle timings these fixtures use.
- `api`: the app on `sqlite_settings` with callers alice and bob (tests.support.api); `api_both`: the same on
  `db_settings`.

Helpers live in `tests.support` (its docstring lists them); its asserts are rewritten as a test's are.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.support")  # before any test imports it

from tests.support.databases import FAST, copy_migrated_sqlite, finish_drops, fresh_postgres_settings  # noqa: E402
from trainyard.store.settings import Settings  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _test_databases_dropped():
    """At the end of the run, wait for the test databases still being dropped in the background."""
    yield
    finish_drops()


@pytest.fixture
def sqlite_settings(tmp_path) -> Settings:
    """Embedded settings under tmp_path: SQLite database and filesystem broker, fast lifecycle timings."""
    return Settings(home=tmp_path / "home", **FAST)


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

    copy_migrated_sqlite(db_settings)  # SQLite: a copy of a file migrated once (PostgreSQL: nothing)
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


@pytest.fixture
def api(sqlite_settings):
    """An app on a fresh SQLite database with the filesystem broker (no worker runs), callers alice and bob."""
    from tests.support.api import make_api

    a = make_api(sqlite_settings)
    yield a
    a.engine.dispose()


@pytest.fixture
def api_both(db_settings):
    """The same, once on SQLite + filesystem broker and once on PostgreSQL + Redis."""
    from tests.support.api import make_api

    a = make_api(db_settings)
    yield a
    a.engine.dispose()
