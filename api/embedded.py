"""`trainyard up`: the all-in-one local service — migrate, then the API, one worker and the reconciler as child processes.

Each part is a fresh `python -m …` process (never a fork of one that may have loaded
TensorFlow). `up` supervises them: when one exits, or on Ctrl-C / SIGTERM, it stops
them all together. With no configuration everything lives under TRAINYARD_HOME
(default ./var): a SQLite database, the filesystem broker and the local token.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from trainyard.api.urls import PREFIX
from trainyard.store.private import private_folder
from trainyard.store.settings import Settings, load_settings

STOP_SECONDS = 15.0  # how long the parts get to stop before they are killed
READY_SECONDS = 60.0
LOCAL_USER = "local"


def ensure_token(settings: Settings) -> str:
    """The token in $TRAINYARD_HOME/token, created (for user `local`) when absent or no longer valid."""
    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.tokens import create_token, verify_token

    path = settings.token_file
    engine = make_engine(settings)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            if path.exists():
                token = path.read_text().strip()
                if token and verify_token(session=session, token=token) is not None:
                    return token
            token, _ = create_token(session=session, user_name=LOCAL_USER)
    finally:
        engine.dispose()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def child_env(settings: Settings) -> dict[str, str]:
    """The environment every part gets: the same home, database and broker as `up` resolved them."""
    env = dict(os.environ)
    env.update(TRAINYARD_HOME=str(settings.home), TRAINYARD_DATABASE_URL=settings.database_url,
               TRAINYARD_BROKER_URL=settings.broker_url, PYTHONUNBUFFERED="1")
    if not env.get("TRAINYARD_OPERATOR_USERS", "").strip():  # whoever runs `up` may see its worker's host and pid
        env["TRAINYARD_OPERATOR_USERS"] = LOCAL_USER
    return env


def commands(*, host: str, port: int) -> dict[str, list[str]]:
    """The parts and how each is started."""
    py = sys.executable
    return {
        "api": [py, "-m", "trainyard.api.serve", "--host", host, "--port", str(port), "--workers", "1"],
        "worker": [py, "-m", "trainyard.client.cli", "worker", "--queues", "cpu", "--concurrency", "1"],
        "reconciler": [py, "-m", "trainyard.client.cli", "reconcile"],
    }


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if `up` dies without stopping us (Linux), so no part is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start(cmds: dict[str, list[str]], env: dict[str, str]) -> dict[str, subprocess.Popen]:
    """Start every part in its own session, so a terminal's Ctrl-C reaches only `up`, which stops them in order."""
    return {name: subprocess.Popen(cmd, env=env, start_new_session=True,
                                   preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            for name, cmd in cmds.items()}


def stop(procs: dict[str, subprocess.Popen], timeout: float = STOP_SECONDS) -> None:
    """SIGTERM every running part, wait, then SIGKILL what is left."""
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs.values():
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _banner(settings: Settings, host: str, port: int) -> str:
    from trainyard.api.ui.sessions import CODE_MINUTES, sign_in_link

    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    base = f"http://{shown}:{port}"
    return (f"trainyard is up: {base}{PREFIX} (docs: {base}{PREFIX}/docs)\n"
            f"  home:  {settings.home}\n"
            f"  token: {settings.token_file}\n"
            f"  try:   curl -s -X POST {base}{PREFIX}/jobs -H \"Authorization: Bearer $(cat {settings.token_file})\" "
            f"-H 'Content-Type: application/json' --data @examples/xor_relu_3.json\n"
            f"  dashboard: {sign_in_link(settings, base)}\n"
            f"             (signs one browser in, once, within {CODE_MINUTES} min; later: {base}/ and the token)\n"
            f"Stop with Ctrl-C.")


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on (host, port); checked first so a busy port is not mistaken for us."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def up(*, host: str, port: int) -> int:
    """Migrate, start the API, one worker and the reconciler, and supervise them until one exits or we are told to stop."""
    from trainyard.store.migrate import upgrade

    if port_in_use(host, port):
        print(f"trainyard up: port {port} on {host} is in use (another trainyard up?); stop it or choose "
              "another port with --port", file=sys.stderr)
        return 1
    settings = load_settings()
    private_folder(settings.home)
    upgrade(settings)
    ensure_token(settings)
    stopping = []

    def _on_signal(signum, _frame):
        stopping.append(signum)

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    procs = start(commands(host=host, port=port), child_env(settings))
    try:
        return _supervise(procs, settings, host, port, stopping)
    finally:
        stop(procs)
        for s, handler in previous.items():
            signal.signal(s, handler)


def _supervise(procs, settings: Settings, host: str, port: int, stopping: list) -> int:
    health = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}{PREFIX}/health"
    ready_by, announced = time.monotonic() + READY_SECONDS, False
    while not stopping:
        for name, p in procs.items():
            if p.poll() is not None:
                print(f"trainyard up: the {name} process exited with status {p.returncode}; stopping the others",
                      file=sys.stderr)
                return p.returncode or 1
        if not announced and _healthy(health):
            print(_banner(settings, host, port), flush=True)
            announced = True
        elif not announced and time.monotonic() > ready_by:
            print(f"trainyard up: no healthy answer from {health} after {READY_SECONDS:.0f} s; stopping",
                  file=sys.stderr)
            return 1
        time.sleep(0.5)
    print("trainyard up: stopping", file=sys.stderr, flush=True)
    note = running_jobs_note(settings)
    if note:
        print(note, file=sys.stderr, flush=True)
    return 0


def running_jobs_note(settings: Settings, limit: int = 5) -> str:
    """What stopping does to the jobs that are running now ("" when none): they stop, stay `running` until the
    next start's reconciler finds their lease expired and requeues them, and resume from their last checkpoint."""
    from sqlalchemy import func, select

    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.models import Job

    try:
        engine = make_engine(settings)
        try:
            with session_scope(make_sessionmaker(engine)) as session:
                count = session.scalar(select(func.count()).select_from(Job).where(Job.status == "running")) or 0
                jobs = session.execute(select(Job.id, Job.backend, Job.epoch, Job.epochs).where(
                    Job.status == "running").order_by(Job.started_at).limit(limit)).all()
        finally:
            engine.dispose()
    except Exception as exc:  # the database is gone too: say nothing wrong rather than fail the shutdown
        return f"trainyard up: could not list the running jobs ({type(exc).__name__})"
    if not count:
        return ""
    listed = ", ".join(f"{j.id} ({j.epoch or 0}/{j.epochs} epochs)" for j in jobs) + (", ..." if count > limit else "")
    every = (f"at most every {settings.checkpoint_seconds:g} s of training" if settings.checkpoint_seconds
             else "only at their spec's checkpoint_every (TRAINYARD_CHECKPOINT_SECONDS=0)")
    sklearn = (" A scikit-learn job cannot checkpoint: it starts again from epoch 0."
               if any(j.backend == "sklearn" for j in jobs) else "")
    return (f"trainyard up: {count} running job{'s' if count != 1 else ''} stop{'s' if count == 1 else ''} with "
            f"the worker: {listed}. {'It stays' if count == 1 else 'They stay'} `running` until the next "
            "`trainyard up` (or `make run`), whose reconciler requeues "
            f"{'it' if count == 1 else 'them'} once {'its' if count == 1 else 'their'} lease "
            f"({settings.lease_seconds:g} s) has expired; training resumes from the last checkpoint, made {every}."
            f"{sklearn}")
