"""Tiny jobs through the service (run by hand; issue 11, third speed goal): jobs/s on 2 worker processes, PG + Redis.

    .venv/bin/python bench/bench_tiny_jobs.py [--jobs 300] [--workers 2] [--repeats 3] [--baseline-root PATH]
                                              [--dataset xor|digits] [--profile DIR]

Each run is a child process with a fresh PostgreSQL database and Redis namespace, migrated by the code it measures,
and `--workers` real worker processes (concurrency 1) of that code. After a warm-up job per worker, `--jobs` one-epoch
XOR jobs (4 rows; `--dataset digits`: 1,797 rows, 64 → 32 → 10) with a distinct seed each (so none is reused from an
earlier one) go through it twice:

- submitted: each job submitted as the API does (validate, insert + commit, publish), back to back from this one
  process, while the workers run them; the clock runs from the first submit to the last job succeeded (the
  figure the README gave before, 94-97 jobs/s, was measured this way by bench_service.py);
- queued: the rows inserted first (not timed), then the messages published back to back; from the first message
  to the last job succeeded: what the workers alone sustain.

Every job must succeed. Beside the rates: CPU milliseconds per job of each kind of process (this submitter, the
workers' main processes, their pool processes, the PostgreSQL backends of the run's database, redis-server — shared
with anything else using it), from /proc. `--baseline-root` runs another checkout's code the same way, alternating
with this one's (several repeats; median and range): a folder named `trainyard` with symlinks to that checkout's
api/client/core/migrations/store/worker goes first on PYTHONPATH (a checkout from before the `trainyard.` import
names runs with its root on PYTHONPATH instead). E.g. the code before a change:

    git worktree add /tmp/ty-base HEAD~3 && .venv/bin/python bench/bench_tiny_jobs.py --baseline-root /tmp/ty-base

`--async-commit` is a diagnostic, not a setting to run with: the run's database gets `synchronous_commit = off`,
so no commit waits for the disk's fsync (what that wait costs a job).

`--profile DIR` runs cProfile in every worker process (main and pool; it slows them) and writes the .prof files and
each one's top functions to DIR.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
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
POSTGRES = os.environ.get("TRAINYARD_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("TRAINYARD_BENCH_REDIS", "redis://127.0.0.1:6379/10")
PACKAGES = ("api", "client", "core", "migrations", "store", "worker")
TICK = os.sysconf("SC_CLK_TCK")


def xor(seed: int) -> dict:
    return {"dataset": {"builtin": "xor"},
            "model": {"layers": [{"type": "dense", "units": 4, "activation": "relu"},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {"epochs": 1, "batch_size": 4, "seed": seed,
                         "optimizer": {"name": "adam", "learning_rate": 0.01}}}


def digits(seed: int) -> dict:
    """A one-epoch digits job (1,797 rows, 64 → 32 → 10): small, as a sweep's short trials are."""
    return {"dataset": {"builtin": "digits"},
            "model": {"layers": [{"type": "dense", "units": 32, "activation": "relu"},
                                 {"type": "dense", "units": 10, "activation": "softmax"}]},
            "training": {"epochs": 1, "batch_size": 64, "seed": seed}}


SPECS = {"xor": xor, "digits": digits}


# --- running one checkout's code ------------------------------------------------------------------------------
def import_path(root: Path, folder: Path) -> tuple[str, str]:
    """(PYTHONPATH, module prefix) that import `root`'s packages: `trainyard.` through symlinks in `folder`."""
    if "trainyard." not in (root / "worker" / "main.py").read_text():
        return str(root), ""  # a checkout from before the trainyard.* import names
    package = folder / "trainyard"
    package.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES:
        (package / name).symlink_to(root / name)
    return str(folder), "trainyard."


def run_child(root: Path, args: argparse.Namespace, profile: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path, prefix = import_path(root.resolve(), Path(tmp))
        env = {**os.environ, "PYTHONPATH": path}
        command = [sys.executable, __file__, "--child", "--prefix", prefix, "--jobs", str(args.jobs),
                   "--dataset", args.dataset,
                   "--workers", str(args.workers), *(["--profile", profile] if profile else []),
                   *(["--async-commit"] if args.async_commit else [])]
        out = subprocess.run(command, env=env, cwd=tmp, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- CPU accounting (Linux /proc) -------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def processes_named(match) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if match(cmdline):
                found.append(int(entry))
    return found


def cpu_by_kind(workers: list[int], database: str) -> dict[str, float]:
    pools = [c for w in workers for c in children(w)]
    return {"submitter": time.process_time(),
            "worker main": sum(map(cpu_seconds, workers)),
            "pool": sum(map(cpu_seconds, pools)),
            "postgres": sum(map(cpu_seconds, processes_named(lambda c: c.startswith("postgres: ") and database in c))),
            "redis": sum(map(cpu_seconds, processes_named(lambda c: c.startswith("redis-server"))))}


# --- one run (the child process) --------------------------------------------------------------------------------
PROFILED_WORKER = """
import cProfile, os, sys
from celery import signals
out = sys.argv.pop(1)
main_profile = cProfile.Profile()
pool = {}

@signals.worker_process_init.connect
def _start(**_):
    main_profile.disable()
    pool["p"] = cProfile.Profile()
    pool["p"].enable()

@signals.worker_process_shutdown.connect
def _stop(**_):
    pool["p"].disable()
    pool["p"].dump_stats(os.path.join(out, f"pool-{os.getpid()}.prof"))

import importlib
import itertools
main = importlib.import_module(sys.argv.pop(1)).main
main_profile.enable()
try:
    code = main(sys.argv[1:])
finally:
    main_profile.disable()
    main_profile.dump_stats(os.path.join(out, f"main-{os.getpid()}.prof"))
sys.exit(code)
"""


def child(args: argparse.Namespace) -> None:
    import redis
    import sqlalchemy

    def mod(name: str):
        return importlib.import_module(args.prefix + name)

    Settings = mod("store.settings").Settings
    db, jobs, migrate = mod("store.db"), mod("store.jobs"), mod("store.migrate")
    validate_spec, publish_job = mod("core.validate").validate_spec, mod("worker.publish").publish_job
    create_celery, get_or_create_user = mod("worker.app").create_celery, mod("store.tokens").get_or_create_user

    admin = sqlalchemy.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    database, namespace = f"trainyard_bench_{uuid.uuid4().hex[:10]}", f"ty-bench-{uuid.uuid4().hex[:10]}:"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
        if args.async_commit:
            conn.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" SET synchronous_commit = off'))
    procs: list[subprocess.Popen] = []
    try:
        home = Path(tempfile.mkdtemp(prefix="ty-bench-"))
        settings = Settings(home=home, database_url=admin.url.set(database=database).render_as_string(
            hide_password=False), broker_url=REDIS, broker_namespace=namespace)
        migrate.upgrade(settings)
        factory = db.make_sessionmaker(db.make_engine(settings))
        celery = create_celery(settings)
        with db.session_scope(factory) as session:
            owner = get_or_create_user(session=session, name="bench").id
        # Several workers on one host: each pool process gets its share of the CPUs for BLAS (README, settings)
        blas = max(1, len(os.sched_getaffinity(0)) // args.workers)
        env = {**os.environ, **settings.to_env(), "TRAINYARD_LOG_LEVEL": "WARNING", "TRAINYARD_BLAS_THREADS": str(blas)}
        worker_main = [f"{args.prefix}worker.main", "--queues", "cpu", "--concurrency", "1"]
        command = ([sys.executable, "-c", PROFILED_WORKER, args.profile, *worker_main] if args.profile
                   else [sys.executable, "-m", *worker_main])
        procs = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True) for _ in range(args.workers)]
        counts = sqlalchemy.text("SELECT status, count(*) FROM jobs GROUP BY status")

        def insert(seed: int) -> tuple[str, str]:
            with db.session_scope(factory) as session:
                spec = validate_spec(SPECS[args.dataset](seed))
                job, _ = jobs.create_job(session=session, owner=owner, spec=spec)
            return job.id, job.device

        def wait_all(total: int, timeout: float = 600) -> float:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with factory() as session:
                    by_status = dict(session.execute(counts).all())
                if by_status.get("succeeded", 0) + by_status.get("failed", 0) + by_status.get("cancelled", 0) >= total:
                    assert by_status.get("succeeded", 0) == total, by_status
                    return time.perf_counter()
                time.sleep(0.005)
            raise TimeoutError(f"{total} jobs not finished: {by_status}")

        for seed in range(args.workers):  # warm-up: every worker's imports, pool connections
            publish_job(celery=celery, job_id=insert(10_000_000 + seed)[0], device="cpu")
        wait_all(args.workers)
        done, result = args.workers, {}
        for mode in ("submitted", "queued"):
            seeds = range(done, done + args.jobs)
            queued = [insert(s) for s in seeds] if mode == "queued" else []
            before = cpu_by_kind([p.pid for p in procs], database)
            started = time.perf_counter()
            if mode == "submitted":
                for seed in seeds:
                    job_id, device = insert(seed)
                    publish_job(celery=celery, job_id=job_id, device=device)
            else:
                for job_id, device in queued:
                    publish_job(celery=celery, job_id=job_id, device=device)
            sent = time.perf_counter()
            done += args.jobs
            ended = wait_all(done)
            after = cpu_by_kind([p.pid for p in procs], database)
            result[mode] = {"jobs_per_s": args.jobs / (ended - started), "send_s": sent - started,
                            "cpu_ms_per_job": {k: 1000 * (after[k] - before[k]) / args.jobs for k in after},
                            **job_times(factory, sqlalchemy)}
        print(json.dumps(result))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{namespace}*"))
        if keys:
            client.delete(*keys)


def job_times(factory, sqlalchemy) -> dict[str, float]:
    """Median ms of a job's run (started → finished, from its row) and of a worker's gap between the end of one job
    and the start of its next (taking the message, claiming)."""
    query = sqlalchemy.text("SELECT worker, started_at, finished_at FROM jobs WHERE status = 'succeeded' "
                            "ORDER BY worker, started_at")
    with factory() as session:
        rows = session.execute(query).all()
    runs = [(r.finished_at - r.started_at).total_seconds() for r in rows]
    gaps = [(b.started_at - a.finished_at).total_seconds() for a, b in itertools.pairwise(rows) if a.worker == b.worker]
    return {"run_ms": 1000 * statistics.median(runs), "gap_ms": 1000 * statistics.median(gaps)}


# --- the parent: alternate the checkouts, print medians ----------------------------------------------------------
def show_profiles(folder: Path, top: int = 25) -> None:
    import pstats

    for path in sorted(folder.glob("*.prof")):
        with open(path.with_suffix(".txt"), "w") as out:
            stats = pstats.Stats(str(path), stream=out)
            stats.sort_stats("cumulative").print_stats(top)
            stats.sort_stats("tottime").print_stats(top)
        print(f"  profile {path} (top functions in {path.with_suffix('.txt')})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dataset", choices=sorted(SPECS), default="xor",
                        help="the jobs: one-epoch XOR (4 rows) or one-epoch digits (1,797 rows)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-root", type=Path, help="another checkout to run side by side (alternating)")
    parser.add_argument("--profile", type=Path, help="cProfile every worker process; .prof files into this folder")
    parser.add_argument("--async-commit", action="store_true",
                        help="diagnostic: commits on the run's database do not wait for fsync")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.profile = str(args.profile) if args.profile else None
        child(args)
        return 0
    variants = {"this checkout": ROOT, **({"baseline": args.baseline_root} if args.baseline_root else {})}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        for name, root in (variants.items() if repeat % 2 == 0 else reversed(variants.items())):
            profile = None
            if args.profile:
                profile = args.profile / f"{name.replace(' ', '-')}-{repeat}"
                profile.mkdir(parents=True, exist_ok=True)
            runs[name].append(run_child(root, args, str(profile) if profile else None))
            print(f"  run {repeat + 1} {name}: " + ", ".join(f"{m} {r['jobs_per_s']:.0f} jobs/s"
                                                           for m, r in runs[name][-1].items()), flush=True)
            if profile:
                show_profiles(profile)
    print(f"{args.jobs} one-epoch {args.dataset} jobs, {args.workers} worker processes, PostgreSQL + Redis, "
          f"{args.repeats} runs:")
    for mode in ("submitted", "queued"):
        for name in variants:
            rates = [r[mode]["jobs_per_s"] for r in runs[name]]
            sends = [args.jobs / r[mode]["send_s"] for r in runs[name]]
            cpu = {k: statistics.median(r[mode]["cpu_ms_per_job"][k] for r in runs[name])
                   for k in runs[name][0][mode]["cpu_ms_per_job"]}
            print(f"  {mode:9s} {name:13s}: median {statistics.median(rates):5.0f} jobs/s "
                  f"(range {min(rates):.0f}-{max(rates):.0f}); sent at {statistics.median(sends):.0f}/s; "
                  f"job run {statistics.median(r[mode]['run_ms'] for r in runs[name]):.1f} ms, "
                  f"gap {statistics.median(r[mode]['gap_ms'] for r in runs[name]):.1f} ms; "
                  "CPU ms/job " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
