"""Issue 12's figures: a normal user's latency while slow and long-lived connections are held open (run by hand).

    .venv/bin/python bench/bench_hostile.py                # embedded: SQLite + file broker, 1 API process
    .venv/bin/python bench/bench_hostile.py --postgres     # production layout: PostgreSQL + Redis, 2 API processes
    .venv/bin/python bench/bench_hostile.py --headers 200 --streams 200 --bodies 20 --requests 300

A real API (gunicorn, gevent workers), a worker training a job and the reconciler run as
separate processes on loopback. The bench measures `GET /jobs/{id}` and `/health` alone,
then again while it holds open `--headers` half-sent request headers, `--streams` event
streams on the running job and `--bodies` POST bodies that trickle a byte every 0.5 s.
Goals: p99 <= 100 ms, /health never times out, the running job keeps its lease (one
attempt). It also prints the API processes' peak RSS (VmHWM). Every loop is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
REDIS_URL = "redis://127.0.0.1:6379/8"
JOB = {"name": "victim", "dataset": {"builtin": "moons", "n_samples": 2000},
       "model": {"layers": [{"type": "dense", "units": 32, "activation": "relu"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 3000, "batch_size": 64, "seed": 1, "checkpoint_every": 100}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], settings, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    env.update(settings.to_env(), PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, *argv], env=env, cwd=ROOT, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def peak_rss_mb(master: int) -> float:
    """The largest VmHWM (peak resident set) among the API master's worker processes, in MB."""
    try:
        kids = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except FileNotFoundError:
        return float("nan")
    peaks = []
    for pid in kids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=float("nan"))


@contextlib.contextmanager
def service(postgres: bool, *, user: str, api_workers: int = 1, **changes) -> Iterator[tuple]:
    """A migrated database (scratch PostgreSQL + Redis, or SQLite + file broker), a token of `user`, and the API,
    one worker and the reconciler as processes on loopback: `(url, port, token, processes)` once healthy.
    Everything is stopped (and the scratch database dropped) on exit."""
    from bench_api import scratch_postgres
    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.migrate import upgrade
    from trainyard.store.settings import Settings
    from trainyard.store.tokens import create_token

    home = Path(tempfile.mkdtemp(prefix="trainyard-bench-"))
    url_db, drop = scratch_postgres() if postgres else ("", lambda: None)
    settings = Settings(home=home, database_url=url_db, broker_url=REDIS_URL if postgres else "",
                        broker_namespace=f"bench-{uuid.uuid4().hex}:", rate_limit_per_second=1e6,
                        rate_limit_burst=10**6, **{k: v for k, v in changes.items() if hasattr(Settings, k)})
    upgrade(settings)
    engine = make_engine(settings)
    with session_scope(make_sessionmaker(engine)) as s:
        token, _ = create_token(session=s, user_name=user)
    engine.dispose()
    port = free_port()
    procs = [start(["-m", "trainyard.api.serve", "--port", str(port), "--workers", str(api_workers)], settings,
                   home / "api.log"),
             start(["-m", "trainyard.worker.main", "--queues", "cpu", "--concurrency", "1"], settings, home / "worker.log"),
             start(["-m", "trainyard.worker.reconciler"], settings, home / "reconciler.log")]
    url = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_healthy(url, home)
        yield url, port, token, procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        drop()


def wait_healthy(url: str, home: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the API did not start; see {home}/api.log")
        time.sleep(0.3)


def measure(url: str, token: str, job_id: str, n: int, budget: float = 90.0) -> dict:
    """`n` sequential GET /jobs/{id} and /health with a 10 s timeout each (stopping after `budget` s): latency
    percentiles and failures."""
    auth = {"Authorization": f"Bearer {token}"}
    job_ms, health_ms, failures, slow, t0 = [], [], 0, [], time.monotonic()
    with requests.Session() as http:
        for _ in range(n):
            if time.monotonic() - t0 > budget:
                break
            for path, headers, into in ((f"/jobs/{job_id}", auth, job_ms), ("/health", {}, health_ms)):
                t = time.perf_counter()
                try:
                    ok = http.get(url + path, headers=headers, timeout=10).status_code == 200
                except requests.RequestException:
                    ok = False
                into.append((time.perf_counter() - t) * 1000)
                failures += not ok
                if into[-1] > 1000:
                    slow.append(f"{path} {into[-1]:.0f} ms at +{time.monotonic() - t0 - into[-1] / 1000:.1f} s")
    q = statistics.quantiles(job_ms, n=100)
    return {"done": len(job_ms), "p50": q[49], "p99": q[98], "max": max(job_ms), "health_max": max(health_ms), "failures": failures,
            "slow": slow}


class Attack:
    """Half-sent headers, event streams and trickling bodies held open (re-opened when the server closes them)."""

    def __init__(self, port: int, token: str, job_id: str, headers: int, streams: int, bodies: int):
        self.port, self.token, self.job_id = port, token, job_id
        self.counts = {"header": headers, "stream": streams, "body": bodies}
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []
        self.reopened = 0

    def _open(self, kind: str) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        auth = f"Authorization: Bearer {self.token}\r\n"
        first = {"header": "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-a: ",
                 "stream": f"GET /api/v1/jobs/{self.job_id}/events HTTP/1.1\r\nHost: x\r\n{auth}\r\n",
                 "body": f"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
                         "Content-Length: 100000\r\n\r\n{"}[kind]
        s.sendall(first.encode())
        s.setblocking(False)
        return s

    def _hold(self, kind: str) -> None:
        held = [self._open(kind) for _ in range(self.counts[kind])]
        self.sockets += held
        while not self.stop.wait(0.5):
            for i, s in enumerate(held):
                try:
                    if kind == "stream":
                        if s.recv(1 << 16) == b"":  # read what the stream sends; it ended: reconnect
                            raise ConnectionError
                    else:
                        s.send(b"a" if kind == "header" else b" ")
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    held[i] = self._open(kind)
                    self.reopened += 1

    def __enter__(self) -> "Attack":
        self.threads = [threading.Thread(target=self._hold, args=(k,), daemon=True) for k in self.counts]
        for t in self.threads:
            t.start()
        time.sleep(5)  # let every connection reach the server and settle: "held open" is the state measured
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)
        for s in self.sockets:
            s.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis, 2 API processes")
    parser.add_argument("--headers", type=int, default=200)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--bodies", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # `timeout` too stops the processes started here
    # stream_max_seconds is passed only where Settings has it (the bench also measures the code before it).
    with service(args.postgres, user="alice", api_workers=2 if args.postgres else 1,
                 stream_max_seconds=60.0) as (url, port, token, procs):
        auth = {"Authorization": f"Bearer {token}"}
        job_id = requests.post(url + "/jobs", json=JOB, headers=auth, timeout=30).json()["id"]
        while requests.get(f"{url}/jobs/{job_id}", headers=auth, timeout=10).json()["status"] != "running":
            time.sleep(0.2)
        print("measuring alone …", file=sys.stderr, flush=True)
        quiet = measure(url, token, job_id, args.requests)
        print("measuring under attack …", file=sys.stderr, flush=True)
        with Attack(port, token, job_id, args.headers, args.streams, args.bodies) as attack:
            loaded = measure(url, token, job_id, args.requests)
        job = requests.get(f"{url}/jobs/{job_id}", headers=auth, timeout=10).json()
        layout = "PostgreSQL + Redis, 2 API processes" if args.postgres else "embedded SQLite + file broker, 1 API process"
        print(f"{layout}; {os.cpu_count()} CPUs; {args.requests} sequential GET /jobs/{{id}} + /health each")
        for label, r in (("alone", quiet),
                         (f"with {args.headers} half-sent headers, {args.streams} streams, {args.bodies} slow bodies",
                          loaded)):
            print(f"  {label:64s} p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  max {r['max']:6.1f} ms  "
                  f"/health max {r['health_max']:6.1f} ms  failures {r['failures']} of {r['done']}")
            if r["slow"]:
                print("    over 1 s: " + "; ".join(r["slow"]))
        print(f"  connections the server closed and the attack re-opened: {attack.reopened}")
        print(f"  victim job: {job['status']} at epoch {job['progress']['epoch']}, attempts {job['attempts']} "
              f"(1 = it kept its lease)")
        print(f"  API worker peak RSS: {peak_rss_mb(procs[0].pid):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
