"""Contract-test fixtures: one real service (gunicorn with 2 API processes, a worker, SQLite) for the session."""

from __future__ import annotations

import pytest
from livestack import live_stack

from store.settings import Settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory, fast_timings):
    """`python -m api.serve --workers 2` and `trainyard worker` on a fresh SQLite home; alice's token."""
    with live_stack(Settings(home=tmp_path_factory.mktemp("contract") / "home", **fast_timings)) as s:
        yield s
