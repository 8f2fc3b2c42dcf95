"""A real service for the contract tests: `python -m trainyard.api.serve` (gunicorn, N API processes) and one worker."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Iterator

from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.migrate import upgrade
from trainyard.store.settings import Settings
from trainyard.store.tokens import create_token

from tests.support import ROOT
from tests.support.processes import free_port, settings_env, start_worker, stop_process, wait_for


class Stack:
    """A running API (its URL, a token of user `alice`) and, when asked for, a worker."""

    def __init__(self, settings: Settings, url: str, token: str):
        self.settings, self.url, self.token = settings, url, token

    def get(self, path: str, token: str | None = None) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {token or self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
        except OSError:  # not listening yet
            return 0, {}, b""


@contextlib.contextmanager
def live_stack(settings: Settings, *, api_processes: int = 2, worker: bool = True,
               env: dict[str, str] | None = None) -> Iterator[Stack]:
    """Migrate, start the API (`api_processes` gunicorn workers) and a worker; stop both on exit."""
    upgrade(settings)
    engine = make_engine(settings)
    with session_scope(make_sessionmaker(engine)) as s:
        token, _ = create_token(session=s, user_name="alice")
    engine.dispose()
    port = free_port()
    settings.home.mkdir(parents=True, exist_ok=True)
    procs = []
    with open(settings.home / "api.log", "ab") as log:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "trainyard.api.serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(api_processes)], env={**settings_env(settings), **(env or {})}, cwd=ROOT,
            stdout=log, stderr=subprocess.STDOUT))
    try:
        stack = Stack(settings, f"http://127.0.0.1:{port}", token)
        wait_for(lambda: procs[0].poll() is not None or stack.get("/api/v1/health")[0] == 200, 60, "the API")
        assert procs[0].poll() is None, (settings.home / "api.log").read_text()
        if worker:
            procs.append(start_worker(settings))
            wait_for(lambda: procs[1].poll() is not None or json.loads(stack.get("/api/v1/workers")[2])["items"],
                     60, "the worker to register")
            assert procs[1].poll() is None, (settings.home / "worker.log").read_text()
        yield stack
    finally:
        for p in procs:  # all at once: each takes seconds to stop gracefully
            if p.poll() is None:
                p.terminate()
        for p in procs:
            stop_process(p)
