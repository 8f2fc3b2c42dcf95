"""GET /health: liveness plus database and broker checks (no auth); 503 problem+json when either is down."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import text

from trainyard.api.errors import problem

bp = Blueprint("health", __name__)
BROKER_TIMEOUT_SECONDS = 2.0


def check_database() -> tuple[bool, str]:
    from trainyard.api.context import state

    try:
        with state().read_sessions() as db:  # a read: on SQLite it never waits for the write lock
            db.execute(text("SELECT 1"))
        return True, "ok"
    except Exception as exc:  # any failure means "down"; the detail says which
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def check_broker() -> tuple[bool, str]:
    from trainyard.api.context import celery_app

    try:
        with celery_app().connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
        return True, "ok"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@bp.get("/health")
def get_health():
    """200 with every check when all are up; 503 problem+json naming the failing ones."""
    db_ok, db_detail = check_database()
    broker_ok, broker_detail = check_broker()
    checks = {"database": {"ok": db_ok, "detail": db_detail}, "broker": {"ok": broker_ok, "detail": broker_detail}}
    if db_ok and broker_ok:
        return {"status": "ok", "checks": checks}
    down = [name for name, c in checks.items() if not c["ok"]]
    return problem(503, f"{' and '.join(down)} unavailable: " + "; ".join(checks[n]["detail"] for n in down),
                   kind="unavailable", checks=checks)
