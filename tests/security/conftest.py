"""Security-test fixtures: an audit hook that sees any unpickling (tests.support.audit), and apps with small limits.

`api` and `api_both` (an app with callers alice and bob) come from tests/conftest.py.
"""

from __future__ import annotations

import pytest

from tests.support.api import make_api
from tests.support.audit import watching


@pytest.fixture
def no_code_runs():
    """Arm the audit hook for the test; fail it if anything was unpickled or a command was run."""
    with watching() as seen:
        yield seen
    assert seen == [], f"hostile input reached {seen}"


@pytest.fixture
def limited(sqlite_settings):
    """`limited(**settings)`: an app whose limits are the given small values."""
    made = []

    def make(**changes):
        a = make_api(sqlite_settings, **changes)
        made.append(a)
        return a

    yield make
    for a in made:
        a.engine.dispose()


@pytest.fixture
def limited_both(db_settings):
    """`limited_both(**settings)`: an app with these settings, once on SQLite + filesystem broker and once on
    PostgreSQL + Redis."""
    made = []

    def make(**changes):
        made.append(make_api(db_settings, **changes))
        return made[-1]

    yield make
    for a in made:
        a.engine.dispose()
