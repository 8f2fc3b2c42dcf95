"""Celery's own tools (issue 13 §2): `trainyard celery inspect ping` sees the workers with celery_monitoring on.

Off (the default), workers answer no remote control and send no events, as before: they report in through the
database (GET /workers), and Celery's tools say no node replied.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from trainyard.store.db import session_scope
from trainyard.store.settings import Settings, load_settings
from trainyard.store.workers import list_live_workers
from trainyard.worker.app import create_celery

from tests.support import ROOT
from tests.support.service import running_service

pytestmark = pytest.mark.timeout(120)


def celery_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "trainyard.client.cli", "celery", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_the_setting_turns_on_remote_control_and_events_and_is_off_by_default():
    assert load_settings({}).celery_monitoring is False
    assert load_settings({"TRAINYARD_CELERY_MONITORING": "true"}).celery_monitoring is True
    for on in (False, True):
        conf = create_celery(Settings(broker_url="redis://127.0.0.1:6379/9", celery_monitoring=on)).conf
        assert (conf.worker_enable_remote_control, conf.worker_send_task_events) == (on, on)


@pytest.mark.parametrize("monitoring", [False, True], ids=["off", "on"])
def test_celery_inspect_ping_sees_the_worker_only_with_monitoring_on(tmp_path, fresh_postgres, monitoring):
    with fresh_postgres(tmp_path / "home", celery_monitoring=monitoring) as settings, \
            running_service(settings) as service:
        with session_scope(service.factory) as session:
            [worker] = [w.name for w in list_live_workers(session=session, live_seconds=60)]
        ping = celery_cli(settings, "inspect", "ping", "--timeout", "3")
    if monitoring:
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert re.findall(r"^->\s+(\S+): OK", ping.stdout, re.M) == [worker]
    else:
        assert ping.returncode == 69, ping.stdout + ping.stderr  # EX_UNAVAILABLE: no node replied
        assert "TRAINYARD_CELERY_MONITORING=true" in ping.stderr and "No nodes replied" in ping.stderr


def test_the_embedded_broker_has_no_celery_tools(tmp_path):
    result = celery_cli(Settings(home=tmp_path / "home"), "inspect", "ping")
    assert result.returncode == 2 and "set TRAINYARD_BROKER_URL to a Redis" in result.stderr
