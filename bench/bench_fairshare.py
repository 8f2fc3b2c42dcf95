"""User B's wait while user A has many jobs queued (run by hand; issue 14 item 1).

    .venv/bin/python bench/bench_fairshare.py [--root PATH] [--queued 300] [--workers 2] [--epochs 100]

A fresh PostgreSQL database and Redis namespace, migrated by the code under `--root` (default: this
checkout). User A submits `--queued` small XOR jobs (insert, commit, publish: what the API does); then
`--workers` worker processes of concurrency 1 and a reconciler start from that code, and once every
worker is busy with A's jobs, user B submits one. Printed: how long B's job waited (created_at → started_at, from the
database), how many of A's jobs started before it, and A's mean job time. To measure the behaviour before
fair share, point `--root` at a worktree of the commit before it:

    git worktree add /tmp/fs-base b80b88b && .venv/bin/python bench/bench_fairshare.py --root /tmp/fs-base
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

POSTGRES = os.environ.get("TRAINYARD_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("TRAINYARD_BENCH_REDIS", "redis://127.0.0.1:6379/10")


def xor(epochs: int, seed: int) -> dict:
    return {"dataset": {"builtin": "xor"},
            "model": {"layers": [{"type": "dense", "units": 4, "activation": "relu"},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {"epochs": epochs, "batch_size": 4, "seed": seed,
                         "optimizer": {"name": "adam", "learning_rate": 0.01}}}


@contextlib.contextmanager
def database(settings_class, home: Path):
    """Settings on a new PostgreSQL database and Redis namespace, both removed on exit."""
    import redis
    import sqlalchemy

    admin = sqlalchemy.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name, namespace = f"trainyard_bench_{uuid.uuid4().hex[:10]}", f"ty-bench-{uuid.uuid4().hex[:10]}:"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield settings_class(home=home, database_url=admin.url.set(database=name).render_as_string(
            hide_password=False), broker_url=REDIS, broker_namespace=namespace, reconcile_interval_seconds=1.0)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{namespace}*"))
        if keys:
            client.delete(*keys)
        client.close()


def start(root: Path, settings, *argv: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    env.update(settings.to_env(), TRAINYARD_LOG_LEVEL="WARNING", PYTHONPATH=str(root))
    return subprocess.Popen([sys.executable, "-m", *argv], env=env, cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # jobs are left behind on purpose: the database is dropped next
    for proc in procs:
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--queued", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    root = args.root.resolve()
    sys.path.insert(0, str(root))  # the code under test, for the rows and messages as well as the processes
    from sqlalchemy import func, select

    from trainyard.core.validate import validate_spec
    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.jobs import create_job
    from trainyard.store.migrate import upgrade
    from trainyard.store.models import Job
    from trainyard.store.settings import Settings
    from trainyard.store.tokens import get_or_create_user
    from trainyard.worker.app import create_celery
    from trainyard.worker.publish import publish_job

    assert Path(sys.modules["store"].__file__).resolve().is_relative_to(root), sys.modules["store"].__file__
    with tempfile.TemporaryDirectory() as tmp, database(Settings, Path(tmp) / "home") as settings:
        upgrade(settings)
        engine = make_engine(settings)
        factory, celery = make_sessionmaker(engine), create_celery(settings)
        with session_scope(factory) as s:
            a, b = (get_or_create_user(session=s, name=n).id for n in ("user-a", "user-b"))

        def submit(owner: str, seed: int) -> str:
            with session_scope(factory) as s:
                job, _ = create_job(session=s, owner=owner, spec=validate_spec(xor(args.epochs, seed)))
            publish_job(celery=celery, job_id=job.id, device="cpu")
            return job.id

        def count(*where) -> int:
            with session_scope(factory) as s:
                return s.scalar(select(func.count()).select_from(Job).where(*where))

        for seed in range(args.queued):  # before the workers start, so that A has them all queued
            submit(a, seed + 1)
        procs = [start(root, settings, "trainyard.worker.main", "--queues", "cpu", "--concurrency", "1")
                 for _ in range(args.workers)] + [start(root, settings, "trainyard.worker.reconciler")]
        try:
            while count(Job.owner_id == a, Job.status == "running") < args.workers:
                time.sleep(0.05)
            queued_then = count(Job.owner_id == a, Job.status == "queued")
            b_job = submit(b, 10_000)
            while True:
                with session_scope(factory) as s:
                    job = s.get(Job, b_job)
                    if job.started_at is not None:
                        waited = (job.started_at - job.created_at).total_seconds()
                        before = s.scalar(select(func.count()).select_from(Job).where(
                            Job.owner_id == a, Job.started_at > job.created_at, Job.started_at < job.started_at))
                        done = list(s.execute(select(Job.started_at, Job.finished_at).where(
                            Job.owner_id == a, Job.status == "succeeded")))
                        break
                time.sleep(0.05)
        finally:
            stop(procs)
            engine.dispose()
    mean = sum((f - s).total_seconds() for s, f in done) / max(1, len(done))
    print(f"code: {root}\n{args.workers} workers; user A had {queued_then} jobs queued (and {args.workers} running) "
          f"when user B submitted one\nuser B's job waited {waited:.2f} s; {before} of A's jobs started before it; "
          f"A's jobs took {mean:.2f} s each on average ({len(done)} finished)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
