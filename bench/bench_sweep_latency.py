"""A sweep's trial finishing → its next trial starting (issue 9's goal: p50 <= 100 ms on PostgreSQL + Redis).

    .venv/bin/python bench/bench_sweep_latency.py [--trials 30] [--skip-sqlite]

A sweep of `--trials` one-epoch XOR trials, one at a time (`parallel` 1, random sampler, `"reuse": false` so every
trial trains), on one real worker process (concurrency 1). The gap of trial n+1 is its `started_at` (the worker's
claim) minus trial n's `finished_at` (the worker's final commit), both written by the worker. What happens in
between: the worker that finished trial n runs one controller step for the sweep (lock, rebuild the study, ask
the sampler, insert and commit trial n+1, publish), the broker delivers, the worker claims it.

Side by side, the baseline a user had without sweeps: a client loop that polls the finished job every 5 ms and
then submits the next one (insert, commit, publish) — the same gap, measured the same way.

Last, what one step costs whatever the machine's load: SQL statements and CPU time of this process per step (random
and TPE samplers, 40 trials, each marked finished before the next step), in-process on PostgreSQL + Redis.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_service import postgres_settings, service, submit, wait, xor  # noqa: E402
from sqlalchemy import select  # noqa: E402

from trainyard.core.spec import normalised  # noqa: E402
from trainyard.core.sweeps.request import parse_request  # noqa: E402
from trainyard.core.validate import validate_spec  # noqa: E402
from trainyard.store.db import session_scope  # noqa: E402
from trainyard.store.models import Job, Sweep  # noqa: E402
from trainyard.store.settings import Settings  # noqa: E402
from trainyard.store.sweeps import create_sweep  # noqa: E402
from trainyard.worker.controller import step  # noqa: E402


def base() -> dict:
    spec = xor(1)
    spec["reuse"] = False
    return spec


def sweep_gaps(settings: Settings, trials: int) -> list[float]:
    with service(settings) as (factory, celery, owner, _pid):
        request = parse_request({"base": base(), "space": {"training.optimizer.learning_rate":
                                                           {"float": [1e-3, 1e-1], "log": True}},
                                 "objective": {"metric": "loss"}, "sampler": {"name": "random", "seed": 0},
                                 "trials": trials, "parallel": 1}, max_trials=10_000, max_parallel=64, max_grid=1)
        request.base = normalised(validate_spec(request.base))
        with session_scope(factory) as session:
            sweep_id = create_sweep(session=session, owner=owner, request=request.as_json())[0].id
        step(settings=settings, factory=factory, sweep_id=sweep_id, celery=celery)
        while True:
            with session_scope(factory) as session:
                status = session.scalar(select(Sweep.status).where(Sweep.id == sweep_id))
            if status != "running":
                break
            time.sleep(0.05)
        assert status == "succeeded", status
        with session_scope(factory) as session:
            rows = session.execute(select(Job.created_at, Job.started_at, Job.finished_at)
                                   .where(Job.sweep_id == sweep_id).order_by(Job.trial)).all()
    pairs = list(zip(rows, rows[1:]))
    show("  of which finished → next trial committed",
         [(b.created_at - a.finished_at).total_seconds() for a, b in pairs])
    show("  of which committed → claimed by the worker",
         [(b.started_at - b.created_at).total_seconds() for a, b in pairs])
    return [(b.started_at - a.finished_at).total_seconds() for a, b in pairs]


def client_loop_gaps(settings: Settings, trials: int) -> list[float]:
    with service(settings) as (factory, celery, owner, _pid):
        jobs = []
        for _ in range(trials):
            job_id = submit(factory, celery, owner, base())
            jobs.append(wait(factory, owner, job_id))
    return [(b.started_at - a.finished_at).total_seconds() for a, b in zip(jobs, jobs[1:])]


def step_cost(settings: Settings, sampler: str, trials: int = 40) -> tuple[float, float]:
    """(SQL statements, CPU ms) per step, medians over the steps after the first five."""
    from sqlalchemy import event, update

    from trainyard.store.db import make_engine, make_sessionmaker
    from trainyard.store.migrate import upgrade
    from trainyard.store.tokens import get_or_create_user
    from trainyard.worker.app import create_celery

    upgrade(settings)
    engine = make_engine(settings)
    statements = [0]
    event.listen(engine, "before_cursor_execute", lambda *_a, **_k: statements.__setitem__(0, statements[0] + 1))
    factory, celery = make_sessionmaker(engine), create_celery(settings)
    with session_scope(factory) as session:
        owner = get_or_create_user(session=session, name="bench").id
    request = parse_request({"base": base(), "space": {"training.optimizer.learning_rate":
                                                       {"float": [1e-3, 1e-1], "log": True}},
                             "objective": {"metric": "loss"}, "sampler": {"name": sampler, "seed": 0},
                             "trials": trials, "parallel": 1}, max_trials=10_000, max_parallel=64, max_grid=1)
    request.base = normalised(validate_spec(request.base))
    with session_scope(factory) as session:
        sweep_id = create_sweep(session=session, owner=owner, request=request.as_json())[0].id
    cpu, sql = [], []
    for n in range(trials):
        before_cpu, before_sql = time.process_time(), statements[0]
        step(settings=settings, factory=factory, sweep_id=sweep_id, celery=celery, prune=False)
        cpu.append(time.process_time() - before_cpu)
        sql.append(statements[0] - before_sql)
        with session_scope(factory) as session:  # the trial "finished": the next step queues the next one
            session.execute(update(Job).where(Job.sweep_id == sweep_id, Job.status == "queued")
                            .values(status="succeeded", metrics={"loss": 0.5 + n / 100}))
    engine.dispose()
    return statistics.median(sql[5:]), statistics.median(cpu[5:]) * 1000


def show(name: str, gaps: list[float]) -> None:
    ms = sorted(g * 1000 for g in gaps)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    print(f"{name:44s} n={len(ms):3d}  p50 {statistics.median(ms):7.1f} ms  p90 {p90:7.1f} ms  "
          f"min {ms[0]:6.1f}  max {ms[-1]:7.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with postgres_settings(Path(tmp) / "pg") as settings:
            show("PostgreSQL + Redis: sweep (worker's step)", sweep_gaps(settings, args.trials))
        with postgres_settings(Path(tmp) / "pg2") as settings:
            show("PostgreSQL + Redis: client loop (baseline)", client_loop_gaps(settings, args.trials))
        for sampler in ("random", "tpe"):
            with postgres_settings(Path(tmp) / f"cost-{sampler}") as settings:
                sql, cpu = step_cost(settings, sampler)
            print(f"one step ({sampler:6s}): {sql:.0f} SQL statements, {cpu:.1f} ms of CPU", flush=True)
        if not args.skip_sqlite:
            show("SQLite + file broker: sweep (worker's step)", sweep_gaps(Settings(home=Path(tmp) / "a"), args.trials))
            show("SQLite + file broker: client loop (baseline)",
                 client_loop_gaps(Settings(home=Path(tmp) / "b"), args.trials))


if __name__ == "__main__":
    main()
