"""Real processes for the tests: start one with Settings in its environment, stop it, wait for it, a free port.

Every process runs with the repository as its working directory and on PYTHONPATH, and with the TRAINYARD_*
variables of `settings` only (none inherited from the test run's own environment).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from tests.support import ROOT



def free_port() -> int:
    """A loopback TCP port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def settings_env(settings) -> dict[str, str]:
    """os.environ plus the TRAINYARD_* variables that load_settings() reads back into `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if value is not None:
            env["TRAINYARD_" + f.name.upper()] = str(int(value) if isinstance(value, bool) else value)
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_process(settings, argv: list[str], log: Path) -> subprocess.Popen:
    """`python argv...` with `settings` in its environment, in its own process group, output appended to `log`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    env.update(settings.to_env(), PYTHONPATH=str(ROOT))
    with open(log, "ab") as out:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, *argv], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def start_worker(settings, queues: str = "cpu") -> subprocess.Popen:
    """A real `trainyard worker` process on `settings`, output in `settings.home / "worker.log"`."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "worker.log", "ab") as log:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, "-m", "trainyard.client.cli", "worker", "--queues", queues,
                                 "--concurrency", "1"], env=settings_env(settings), cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> int:
    """SIGTERM (a worker's warm shutdown), then SIGKILL if it lingers: its process group (pool children too) when
    it leads one (`start_process`), else the process alone. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if os.getpgid(proc.pid) == proc.pid:  # still running, so the group is still the one it leads
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()
    return proc.returncode


def wait_for(predicate: Callable, timeout: float, what: str, interval: float = 0.05,
             explain: Callable[[], str] = str):
    """Poll until `predicate()` is truthy and return it; fail naming `what` (and `explain()`) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{explain()}")
        time.sleep(interval)
