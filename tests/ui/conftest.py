"""Dashboard fixtures: the API helpers of tests/api (apitest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # apitest: make_api, Caller, fake worker

from apitest import make_api  # noqa: E402


@pytest.fixture
def api_both(db_settings):
    """An app on SQLite + filesystem broker, and on PostgreSQL + Redis (no worker runs)."""
    a = make_api(db_settings)
    yield a
    a.engine.dispose()


@pytest.fixture
def api(sqlite_settings):
    """The same on SQLite only."""
    a = make_api(sqlite_settings)
    yield a
    a.engine.dispose()
