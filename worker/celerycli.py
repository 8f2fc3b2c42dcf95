"""`trainyard celery ARGS…`: Celery's own command line (inspect, status, events, flower) on trainyard's app.

The app is built from the TRAINYARD_* settings, as every worker builds it, so the tools reach the same broker
and key prefix (`TRAINYARD_BROKER_NAMESPACE`). Workers answer them only with `TRAINYARD_CELERY_MONITORING` on.
"""

from __future__ import annotations

import sys

from trainyard.store.settings import load_settings
from trainyard.worker.app import create_celery


def run_celery(argv: list[str]) -> int:
    """Run `celery ARGV…` against trainyard's Celery app; Celery's exit status (69: no worker replied)."""
    settings = load_settings()
    if settings.uses_filesystem_broker:
        print("trainyard celery: the embedded filesystem broker has no remote control or events; "
              "set TRAINYARD_BROKER_URL to a Redis", file=sys.stderr)
        return 2
    if not settings.celery_monitoring and argv[:1] in (["inspect"], ["status"], ["control"], ["flower"]):
        print("trainyard celery: note: workers answer only with TRAINYARD_CELERY_MONITORING=true "
              "(README \"Monitoring\")", file=sys.stderr)
    import click

    try:
        code = create_celery(settings).start(argv)
    except click.ClickException as exc:  # bad usage: click's message, not a traceback (start() is not standalone)
        exc.show()
        return exc.exit_code
    except click.Abort:
        return 1
    return code if isinstance(code, int) else 0
