"""Security-test fixtures: the API helpers of tests/api (apitest.py), an audit hook that sees any unpickling."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # apitest: make_api, Caller, fake worker

from apitest import make_api  # noqa: E402

# Audit events that loading hostile data must never raise: unpickling a class, running a command. (Not
# marshal.loads: every import raises it, nor subprocess.Popen: platform.processor() runs uname; the canary
# files catch those.) One hook for the whole process
# (hooks cannot be removed); it records only while a test has armed it.
WATCHED = ("pickle.find_class", "os.system", "os.exec", "os.posix_spawn")
_seen: list[tuple[str, tuple]] = []
_armed: list[bool] = []


def _hook(event: str, args: tuple) -> None:
    if _armed and event in WATCHED:
        _seen.append((event, args))


sys.addaudithook(_hook)


@pytest.fixture
def no_code_runs():
    """Arm the audit hook for the test; fail it if anything was unpickled or a command was run."""
    _seen.clear()
    _armed.append(True)
    try:
        yield _seen
    finally:
        _armed.clear()
    assert _seen == [], f"hostile input reached {_seen}"


@pytest.fixture
def api(sqlite_settings):
    """An app on a fresh SQLite database (filesystem broker, no worker) with callers alice and bob."""
    a = make_api(sqlite_settings)
    yield a
    a.engine.dispose()


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
def api_both(db_settings):
    """The same app once on SQLite + filesystem broker and once on PostgreSQL + Redis."""
    a = make_api(db_settings)
    yield a
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
