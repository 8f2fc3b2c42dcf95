"""`trainyard api`: the API under gunicorn with gevent workers (api.gevent_worker), so slow clients and open
event streams each cost a greenlet, not a thread, and never starve other requests."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from gunicorn.app.base import BaseApplication
from gunicorn.util import import_app

from trainyard.store.settings import Settings, load_settings

APP = "trainyard.api.wsgi:application"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # as api.metrics (not imported: nothing of the app loads in the master)
SINCE_ENV = "TRAINYARD_METRICS_SINCE"


@contextlib.contextmanager
def multiprocess_metrics(env=os.environ) -> Iterator[str]:
    """Set up prometheus_client's multiprocess mode for the worker processes gunicorn will fork: every process
    writes its counters into one folder and a scrape adds them all up (api.metrics).

    The folder is PROMETHEUS_MULTIPROC_DIR when set (emptied of an earlier run's files first: they would count
    twice), else a private temporary one removed on exit. TRAINYARD_METRICS_SINCE says when this API started
    (the job counters count the jobs that finished since). Set in the environment before the fork, so each
    worker imports prometheus_client in multiprocess mode.
    """
    given = env.get(MULTIPROC_ENV)
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="trainyard-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.db"):
        old.unlink()
    env[MULTIPROC_ENV], env[SINCE_ENV] = str(folder), repr(time.time())
    try:
        yield str(folder)
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)


def child_exit(_server, worker) -> None:
    """gunicorn's hook when a worker process exits: its live gauges stop counting (its counters stay summed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class _Gunicorn(BaseApplication):
    """gunicorn configured from a dict; each worker imports api.wsgi, which builds the app from the settings."""

    def __init__(self, options: dict, app: str = APP):
        self.options, self.app = options, app
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return import_app(self.app)


def gunicorn_options(*, host: str, port: int, workers: int, settings: Settings | None = None) -> dict:
    """The gunicorn settings `serve` runs with: gevent workers, headers bounded by `header_timeout_seconds`
    (gunicorn's gevent worker reads each request's headers under its keep-alive timeout), up to
    `api_max_connections` open connections per worker, and a short graceful stop so open streams don't hold it."""
    s = settings or Settings()
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "trainyard.api.gevent_worker.ApiWorker",
        "worker_connections": s.api_max_connections,
        "keepalive": max(1, math.ceil(s.header_timeout_seconds)),  # gunicorn takes whole seconds
        "timeout": 60,
        "graceful_timeout": 5,
        "forwarded_allow_ips": "*" if s.trusted_proxies else "127.0.0.1,::1",
        "control_socket_disable": True,  # several APIs on one machine would share its one socket path
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "child_exit": child_exit,
    }


def run_gunicorn(app: str, options: dict) -> int:
    """Run gunicorn on the WSGI app `module:name` in this process (it becomes the master); the exit status."""
    try:
        _Gunicorn(options, app).run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def serve(*, host: str, port: int, workers: int) -> int:
    """Run the API in this process (it becomes the gunicorn master) until stopped; returns the exit status."""
    with multiprocess_metrics():
        return run_gunicorn(APP, gunicorn_options(host=host, port=port, workers=workers, settings=load_settings()))


def main(argv: list[str] | None = None) -> int:
    """`python -m trainyard.api.serve --host H --port P --workers N` (what `trainyard up` starts)."""
    parser = argparse.ArgumentParser(prog="python -m trainyard.api.serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    return serve(host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    sys.exit(main())
