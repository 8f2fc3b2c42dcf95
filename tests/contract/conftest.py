"""Contract-test fixtures: one real service (gunicorn with 2 API processes, a worker, SQLite) for the session."""

from __future__ import annotations

import pytest

from trainyard.store.settings import Settings

from tests.support.livestack import live_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory, fast_timings):
    """`python -m trainyard.api.serve --workers 2` and `trainyard worker` on a fresh SQLite home; alice's token.

    Its metrics folder is a known one (`stack.multiproc_dir`), holding a stale file from "an earlier run" that the
    API must clear when it starts."""
    root = tmp_path_factory.mktemp("contract")
    multiproc = root / "metrics"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"stale")
    with live_stack(Settings(home=root / "home", **fast_timings),
                    env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc)}) as s:
        s.multiproc_dir = multiproc
        yield s
