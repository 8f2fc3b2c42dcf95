"""API fixtures: an app on a fresh migrated database with users alice and bob (helpers in apitest.py)."""

from __future__ import annotations

import pytest
from apitest import make_api


@pytest.fixture
def api(sqlite_settings):
    """An app on a fresh SQLite database with the filesystem broker (no worker runs)."""
    a = make_api(sqlite_settings)
    yield a
    a.engine.dispose()


@pytest.fixture
def api_both(db_settings):
    """The same, once on SQLite + filesystem broker and once on PostgreSQL + Redis."""
    a = make_api(db_settings)
    yield a
    a.engine.dispose()
