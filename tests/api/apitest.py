"""API test helpers: an app on a migrated database with two users, spec builders, and a fake worker (store.runs)."""

from __future__ import annotations

import copy

from trainyard.api.app import create_app
from trainyard.core.callbacks import Callbacks
from trainyard.core.job import train_job
from trainyard.core.validate import validate_spec
from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.runs import claim_job, finish_job, heartbeat, record_epochs
from trainyard.store.tokens import create_token

XOR = {"name": "xor", "dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 5, "seed": 1, "batch_size": 4}}

# Converges in 200 full-batch epochs (about 0.1 s): predictions are exactly XOR.
XOR_FIT = {"name": "xor-fit", "dataset": {"builtin": "xor"},
           "model": {"layers": [{"type": "dense", "units": 8, "activation": "tanh"},
                                {"type": "dense", "units": 1, "activation": "sigmoid"}]},
           "training": {"epochs": 200, "seed": 3, "batch_size": 4,
                        "optimizer": {"name": "adam", "learning_rate": 0.05}}}
XOR_INPUTS = [[0, 0], [0, 1], [1, 0], [1, 1]]

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def problem(r, status: int) -> dict:
    """Assert `r` is a problem+json response with `status`; return its body."""
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == status and body["type"].startswith("urn:trainyard:problem:")
    return body


def xor(**changes) -> dict:
    """A tiny XOR spec with top-level keys replaced."""
    return {**copy.deepcopy(XOR), **changes}


class Caller:
    """A test client that sends one user's bearer token."""

    def __init__(self, client, token: str, user_id: str):
        self.client, self.token, self.user_id = client, token, user_id

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path, headers=None, **kw):
        return self.client.get("/api/v1" + path, headers=self._headers(headers), **kw)

    def post(self, path, json=None, headers=None, **kw):
        return self.client.post("/api/v1" + path, json=json, headers=self._headers(headers), **kw)

    def delete(self, path, headers=None, **kw):
        return self.client.delete("/api/v1" + path, headers=self._headers(headers), **kw)

    def submit(self, spec=None, **kw) -> dict:
        r = self.post("/jobs", json=spec or xor(), **kw)
        assert r.status_code in (200, 201), r.get_json()
        return r.get_json()


class Api:
    """The app, its settings and sessions, and callers `alice` and `bob`."""

    def __init__(self, settings):
        self.settings = settings
        self.engine = make_engine(settings)
        self.sessions = make_sessionmaker(self.engine)
        self.app = create_app(settings, engine=self.engine)
        self.client = self.app.test_client()
        self.alice = self.caller("alice")
        self.bob = self.caller("bob")

    def caller(self, name: str) -> Caller:
        with session_scope(self.sessions) as s:
            token, user = create_token(session=s, user_name=name)
            return Caller(self.client, token, user.id)


def make_api(settings, **changes) -> Api:
    from trainyard.store.migrate import upgrade

    settings = settings.replace(**changes)
    upgrade(settings)
    return Api(settings)


# --- playing the worker's part -------------------------------------------------------


def claim(api, job_id: str, worker: str = "test-worker") -> int:
    with session_scope(api.sessions) as s:
        job = claim_job(session=s, job_id=job_id, worker=worker, lease_seconds=60)
        assert job is not None
        return job.attempts


def epochs(api, job_id: str, attempt: int, rows: list[dict]) -> bool:
    with session_scope(api.sessions) as s:
        record_epochs(session=s, job_id=job_id, rows=rows)
        return heartbeat(session=s, job_id=job_id, attempt=attempt, lease_seconds=60, epoch=rows[-1]["epoch"])


def train(api, job_id: str, spec: dict) -> None:
    """Claim the job, train `spec` in-process and record everything as a worker would."""
    attempt = claim(api, job_id)
    rows: list[dict] = []
    result = train_job(validate_spec(spec), Callbacks(on_epoch=rows.append))
    epochs(api, job_id, attempt, result.history)
    with session_scope(api.sessions) as s:
        finish_job(session=s, job_id=job_id, attempt=attempt, status="succeeded", metrics=result.metrics,
                   model=result.model, model_format=result.format, versions=result.versions,
                   epoch=len(result.history))


def fail(api, job_id: str, error: dict) -> None:
    attempt = claim(api, job_id)
    with session_scope(api.sessions) as s:
        finish_job(session=s, job_id=job_id, attempt=attempt, status="failed", error=error)


# --- real processes --------------------------------------------------------------------

def settings_env(settings) -> dict[str, str]:
    """os.environ plus the TRAINYARD_* variables that load_settings() reads back into `settings`."""
    import dataclasses
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if value is not None:
            env["TRAINYARD_" + f.name.upper()] = str(int(value) if isinstance(value, bool) else value)
    env["PYTHONPATH"] = str(ROOT)
    return env


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def start_worker(settings, queues: str = "cpu"):
    """A real `trainyard worker` process on `settings` (stop it with stop_process)."""
    import subprocess
    import sys

    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "worker.log", "ab") as log:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, "-m", "trainyard.client.cli", "worker", "--queues", queues,
                                 "--concurrency", "1"], env=settings_env(settings), cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)


def stop_process(proc, timeout: float = 20) -> None:
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
