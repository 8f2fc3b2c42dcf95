"""Worker-test fixtures: `service`, a real service without the API (tests.support.service), module-scoped and
parametrised over SQLite + filesystem broker and PostgreSQL + Redis, so each module starts its processes once per
backend.
"""

from __future__ import annotations

import pytest

from trainyard.store.settings import Settings

from tests.support.service import running_service


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def service(request, tmp_path_factory, fresh_postgres, fast_timings):
    """A migrated database with one cpu worker and a reconciler running (fast lease/reconcile timings)."""
    home = tmp_path_factory.mktemp(f"service-{request.param}") / "home"
    if request.param == "sqlite":
        with running_service(Settings(home=home, **fast_timings)) as svc:
            yield svc
    else:
        with fresh_postgres(home) as settings, running_service(settings) as svc:
            yield svc
