"""Benchmark GET /api/v1/jobs/{id} under gunicorn (2 threaded workers) beside a trivial Flask endpoint (run by hand).

    .venv/bin/python bench/bench_api.py                  # PostgreSQL on 127.0.0.1:5432 (a scratch database)
    .venv/bin/python bench/bench_api.py --sqlite         # the embedded SQLite database instead
    .venv/bin/python bench/bench_api.py --seconds 10 --connections 16 --clients 2

Goal: >= 1,000 requests/s with p99 <= 25 ms. The load generator is bounded (fixed
connections, fixed duration), keep-alive, and talks to 127.0.0.1 only. It runs on the
same machine as the server, so both share its cores: the figures are a floor.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/8"
SPEC = {"name": "bench", "dataset": {"builtin": "xor"},
        "model": {"layers": [{"type": "dense", "units": 2, "activation": "relu"},
                             {"type": "dense", "units": 1, "activation": "sigmoid"}]},
        "training": {"epochs": 1000, "seed": 20, "batch_size": 4}}


def trivial():
    """The baseline: the smallest Flask app, served by the same gunicorn settings."""
    from flask import Flask

    app = Flask("trivial")
    app.get("/ping")(lambda: {"ok": True})
    return app


# --- the database: a scratch PostgreSQL database or SQLite file, with one finished job ----------------

def scratch_postgres() -> tuple[str, callable]:
    import sqlalchemy

    admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"trainyard_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin.url.set(database=name).render_as_string(hide_password=False), drop


def prepare(settings) -> tuple[str, str]:
    """Migrate, make a token and one succeeded job with history and metrics; returns (token, job id)."""
    from trainyard.core.spec import parse_spec
    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.jobs import create_job
    from trainyard.store.migrate import upgrade
    from trainyard.store.runs import claim_job, finish_job, heartbeat, record_epochs
    from trainyard.store.tokens import create_token

    upgrade(settings)
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        token, user = create_token(session=s, user_name="bench")
        job, _ = create_job(session=s, owner=user.id, spec=parse_spec(SPEC))
    with session_scope(factory) as s:
        attempt = claim_job(session=s, job_id=job.id, worker="bench", lease_seconds=60).attempts
        record_epochs(session=s, job_id=job.id, rows=[{"epoch": i, "loss": 1 / i, "accuracy": 0.5, "time": i / 1e3}
                                                      for i in range(1, 1001)])
        heartbeat(session=s, job_id=job.id, attempt=attempt, lease_seconds=60, epoch=1000)
        finish_job(session=s, job_id=job.id, attempt=attempt, status="succeeded",
                   metrics={"loss": 0.01, "accuracy": 1.0}, versions={"numpy": "2"})
    engine.dispose()
    return token, job.id


# --- servers ----------------------------------------------------------------------------------------

def start_server(app: str, port: int, workers: int, env: dict) -> subprocess.Popen:
    code = ("import sys; from trainyard.api.serve import gunicorn_options, run_gunicorn; "
            f"o = gunicorn_options(host='127.0.0.1', port={port}, workers={workers}); "
            "o['loglevel'] = 'warning'; "
            f"sys.exit(run_gunicorn({app!r}, o))")
    env = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")])}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)


def wait_ready(port: int, path: str, headers: dict, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path, headers=headers)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server on port {port} did not answer {path} with 200")


# --- the load generator -----------------------------------------------------------------------------

def _connection_loop(port, path, headers, stop_at, warm_until, latencies, errors):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while True:
        start = time.perf_counter()
        if start >= stop_at:
            break
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
        except OSError:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            ok = False
        end = time.perf_counter()
        if start >= warm_until:
            (latencies.append(end - start) if ok else errors.append(1))
    conn.close()


def _client_process(args) -> tuple[list[float], int]:
    port, path, headers, threads, warmup, seconds, t0 = args
    latencies: list[float] = []
    errors: list[int] = []
    # Everyone starts and stops on the same wall clock (perf_counter is per process, time.time is shared).
    offset = time.perf_counter() - time.time()
    warm_until, stop_at = t0 + warmup + offset, t0 + warmup + seconds + offset
    workers = [threading.Thread(target=_connection_loop, args=(port, path, headers, stop_at, warm_until,
                                                                latencies, errors)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return latencies, len(errors)


def load(port: int, path: str, headers: dict, *, connections: int, clients: int, seconds: float,
         warmup: float = 2.0) -> dict:
    """`connections` keep-alive connections spread over `clients` processes, for `seconds` after a warm-up."""
    t0 = time.time() + 0.5
    per = [connections // clients + (1 if i < connections % clients else 0) for i in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        results = pool.map(_client_process, [(port, path, headers, n, warmup, seconds, t0) for n in per])
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    n = len(latencies)

    def pct(p):
        return 1000 * latencies[min(n - 1, int(p * n))] if n else float("nan")

    return {"requests": n, "errors": errors, "req_per_s": n / seconds, "p50_ms": pct(0.50), "p90_ms": pct(0.90),
            "p99_ms": pct(0.99), "max_ms": 1000 * latencies[-1] if n else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", action="store_true", help="benchmark on SQLite instead of PostgreSQL")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from trainyard.store.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="trainyard-bench-"))
    url, drop = ("", lambda: None) if args.sqlite else scratch_postgres()
    # The per-token rate limit (100/s by default) would be the bottleneck being measured: lift it here.
    settings = Settings(home=home, database_url=url, broker_url=REDIS_URL, broker_namespace=f"bench-{uuid.uuid4().hex}:",
                        rate_limit_per_second=1e9, rate_limit_burst=10**9)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    env.update(TRAINYARD_HOME=str(home), TRAINYARD_DATABASE_URL=settings.database_url,
               TRAINYARD_BROKER_URL=settings.broker_url, TRAINYARD_BROKER_NAMESPACE=settings.broker_namespace,
               TRAINYARD_RATE_LIMIT_PER_SECOND="1000000000", TRAINYARD_RATE_LIMIT_BURST="1000000000")
    results = {}
    try:
        token, job_id = prepare(settings)
        auth = {"Authorization": f"Bearer {token}"}
        cases = [("baseline GET /ping (trivial Flask)", "bench_api:trivial()", "/ping", {}),
                 ("GET /api/v1/jobs/{id}", "trainyard.api.wsgi:application", f"/api/v1/jobs/{job_id}", auth)]
        for i, (label, app, path, headers) in enumerate(cases):
            server = start_server(app, args.port + i, args.workers, env)
            try:
                wait_ready(args.port + i, path, headers)
                results[label] = load(args.port + i, path, headers, connections=args.connections,
                                      clients=args.clients, seconds=args.seconds)
            finally:
                server.terminate()
                server.wait(30)
    finally:
        drop()
    db = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"gunicorn gevent, {args.workers} workers; {db}; {args.connections} keep-alive "
          f"connections from {args.clients} processes; {args.seconds:g} s after 2 s warm-up; {os.cpu_count()} CPUs")
    for label, r in results.items():
        print(f"{label:38s} {r['req_per_s']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p90 {r['p90_ms']:6.2f} ms  "
              f"p99 {r['p99_ms']:6.2f} ms  max {r['max_ms']:7.2f} ms  errors {r['errors']}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
