"""Service benchmarks (run by hand): reporting overhead of a worker, and submit → succeeded latency.

    .venv/bin/python bench/bench_service.py [--repeats 5] [--latency-jobs 20] [--skip-postgres]

1. Overhead: a 10,000-epoch XOR job (4 samples, batch 4: ~0.1 ms epochs, the worst
   case for per-epoch reporting) trained (a) in-process by `trainyard.core.job.train_job` with no
   callbacks, (b) in-process by `trainyard.worker.runner.run_job` (claim, reporter thread, history
   chunks, final transaction; wall and CPU time of this process, reporter thread
   included), (c) by a real worker process (started_at → finished_at of the job row,
   the training loop's own time from the last history row, and the CPU time the pool
   process spent on the job). Runs alternate; on a
   shared machine the minimum is the least disturbed run, so both median and min show.
2. Latency: tiny jobs (1 epoch) submitted one after another as the API does (insert,
   commit, publish) and polled every 5 ms until succeeded, on PostgreSQL + Redis (and on
   the embedded SQLite + file broker for comparison).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainyard.core.job import train_job  # noqa: E402
from trainyard.core.validate import validate_spec  # noqa: E402
from trainyard.store.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from trainyard.store.jobs import create_job, get_job, history_rows  # noqa: E402
from trainyard.store.migrate import upgrade  # noqa: E402
from trainyard.store.settings import Settings  # noqa: E402
from trainyard.store.tokens import get_or_create_user  # noqa: E402
from trainyard.store.workers import list_live_workers  # noqa: E402
from trainyard.worker.app import create_celery  # noqa: E402
from trainyard.worker.publish import publish_job  # noqa: E402
from trainyard.worker.runner import run_job  # noqa: E402

POSTGRES = os.environ.get("TRAINYARD_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("TRAINYARD_BENCH_REDIS", "redis://127.0.0.1:6379/10")


def xor(epochs: int) -> dict:
    return {"dataset": {"builtin": "xor"},
            "model": {"layers": [{"type": "dense", "units": 4, "activation": "relu"},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {"epochs": epochs, "batch_size": 4, "seed": 1,
                         "optimizer": {"name": "adam", "learning_rate": 0.01}}}


@contextlib.contextmanager
def postgres_settings(home: Path):
    import redis
    import sqlalchemy

    admin = sqlalchemy.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"trainyard_bench_{uuid.uuid4().hex[:10]}"
    namespace = f"ty-bench-{uuid.uuid4().hex[:10]}:"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield Settings(home=home, database_url=admin.url.set(database=name).render_as_string(hide_password=False),
                       broker_url=REDIS, broker_namespace=namespace)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{namespace}*"))
        if keys:
            client.delete(*keys)


@contextlib.contextmanager
def service(settings: Settings, workers: int = 1):
    """A migrated database and `workers` worker processes; yields (factory, celery, owner, first worker pid)."""
    upgrade(settings)
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as session:
        owner = get_or_create_user(session=session, name="bench").id
    env = {**os.environ, **settings.to_env(), "TRAINYARD_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "trainyard.worker.main", "--queues", "cpu", "--concurrency", "1"],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for _ in range(workers)]
    try:
        while True:
            with session_scope(factory) as session:
                if len(list_live_workers(session=session, live_seconds=60)) >= workers:
                    break
            time.sleep(0.1)
        time.sleep(2)  # a worker registers before its consumer is ready
        yield factory, create_celery(settings), owner, procs[0].pid
    finally:
        for worker in procs:
            worker.send_signal(signal.SIGTERM)
        for worker in procs:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        engine.dispose()


def submit(factory, celery, owner: str, document: dict) -> str:
    with session_scope(factory) as session:
        job, _ = create_job(session=session, owner=owner, spec=validate_spec(document))
    publish_job(celery=celery, job_id=job.id, device=job.device)
    return job.id


def wait(factory, owner: str, job_id: str, poll: float = 0.005):
    while True:
        with session_scope(factory) as session:
            job = get_job(session=session, owner=owner, job_id=job_id)
        if job.is_finished:
            assert job.status == "succeeded", job.error
            return job
        time.sleep(poll)


def run_cli_seconds(document: dict) -> float:
    """Wall time of `trainyard run SPEC --quiet` in this process (its result line discarded)."""
    from trainyard.client.local_run import run_command

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(document))
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            assert run_command(str(path), quiet=True) == 0
        return time.perf_counter() - started


def overhead(settings: Settings, repeats: int, epochs: int) -> None:
    document = xor(epochs)
    plain, runner, worker, loop_plain, loop_worker, cpu_plain, cpu_runner, cpu_worker = [], [], [], [], [], [], [], []
    cli = []
    with service(settings) as (factory, celery, owner, worker_pid):
        for _ in range(repeats):
            cli.append(run_cli_seconds(document))
            started, cpu = time.perf_counter(), time.process_time()
            result = train_job(validate_spec(document))
            plain.append(time.perf_counter() - started)
            cpu_plain.append(time.process_time() - cpu)
            loop_plain.append(result.history[-1]["time"])

            with session_scope(factory) as session:
                job, _ = create_job(session=session, owner=owner, spec=validate_spec(document))
            started, cpu = time.perf_counter(), time.process_time()
            assert run_job(settings=settings, factory=factory, job_id=job.id, worker="bench") == "succeeded"
            runner.append(time.perf_counter() - started)
            cpu_runner.append(time.process_time() - cpu)

            cpu = pool_cpu_seconds(worker_pid)
            job = wait(factory, owner, submit(factory, celery, owner, document), poll=0.05)
            worker.append((job.finished_at - job.started_at).total_seconds())
            cpu_worker.append(pool_cpu_seconds(worker_pid) - cpu)
            with session_scope(factory) as session:
                loop_worker.append(history_rows(session=session, job_id=job.id, since=epochs - 1)[-1]["time"])
    show("in-process train_job, no callbacks", plain)
    show("in-process run_job (reporting)", runner, plain)
    show("CPU time, in-process train_job", cpu_plain)
    show("CPU time, in-process run_job", cpu_runner, cpu_plain)
    show("worker process, started→finished", worker, plain)
    show("trainyard run --quiet (the issue's baseline)", cli)
    show("worker process, started→finished", worker, cli)
    show("CPU time, worker pool process", cpu_worker, cpu_plain)
    show("training loop only, in-process", loop_plain)
    show("training loop only, worker", loop_worker, loop_plain)


def pool_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the worker's pool processes (Linux /proc, 10 ms ticks)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(c) for c in f.read().split()]
    total = 0
    for child in children:
        with open(f"/proc/{child}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def show(label: str, times: list[float], base: list[float] | None = None) -> None:
    """Median and minimum (the machine is shared: the minimum is the least disturbed run)."""
    med, low = statistics.median(times), min(times)
    versus = (f"  median {100 * (med / statistics.median(base) - 1):+5.1f} %, min {100 * (low / min(base) - 1):+5.1f} %"
              if base else "")
    print(f"  {label:36s} median {med:6.3f} s, min {low:6.3f} s{versus}")


def latency(settings: Settings, jobs: int) -> None:
    times = []
    with service(settings) as (factory, celery, owner, _):
        wait(factory, owner, submit(factory, celery, owner, xor(1)))  # warm the worker's imports
        for _ in range(jobs):
            started = time.perf_counter()
            wait(factory, owner, submit(factory, celery, owner, xor(1)))
            times.append(time.perf_counter() - started)
    times.sort()
    print(f"  {jobs} tiny jobs: median {1000 * statistics.median(times):.0f} ms, "
          f"p90 {1000 * times[int(0.9 * (len(times) - 1))]:.0f} ms, min {1000 * times[0]:.0f} ms, "
          f"max {1000 * times[-1]:.0f} ms")


def throughput(settings: Settings, jobs: int, workers: int = 2) -> None:
    """Tiny jobs submitted back to back to `workers` worker processes; beside it, the same jobs trained in-process."""
    started = time.perf_counter()
    for _ in range(jobs):
        train_job(validate_spec(xor(1)))
    in_process = jobs / (time.perf_counter() - started)
    with service(settings, workers=workers) as (factory, celery, owner, _):
        for job_id in [submit(factory, celery, owner, xor(1)) for _ in range(2 * workers)]:
            wait(factory, owner, job_id)  # warm every worker's imports
        started = time.perf_counter()
        ids = [submit(factory, celery, owner, xor(1)) for _ in range(jobs)]
        for job_id in ids:
            wait(factory, owner, job_id, poll=0.02)
        elapsed = time.perf_counter() - started
    print(f"  {jobs} tiny jobs on {workers} workers: {jobs / elapsed:.0f} jobs/s "
          f"(baseline: the same jobs trained in one process, no service: {in_process:.0f} jobs/s)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10_000)
    parser.add_argument("--latency-jobs", type=int, default=20)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--throughput-jobs", type=int, default=300)
    parser.add_argument("--only-throughput", action="store_true", help="skip the overhead and latency parts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only_throughput:
            with postgres_settings(Path(tmp) / "pg") as pg:
                print("throughput, PostgreSQL + Redis:")
                throughput(pg, args.throughput_jobs)
            return 0
        embedded = Settings(home=Path(tmp) / "embedded")
        print(f"reporting overhead, {args.epochs}-epoch XOR, SQLite + file broker:")
        overhead(embedded, args.repeats, args.epochs)
        print("submit → succeeded, SQLite + file broker:")
        latency(embedded, args.latency_jobs)
        if not args.skip_postgres:
            with postgres_settings(Path(tmp) / "pg") as pg:
                print(f"reporting overhead, {args.epochs}-epoch XOR, PostgreSQL + Redis:")
                overhead(pg, args.repeats, args.epochs)
                print("submit → succeeded, PostgreSQL + Redis:")
                latency(pg, args.latency_jobs)
                print("throughput, PostgreSQL + Redis:")
                throughput(pg, args.throughput_jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
