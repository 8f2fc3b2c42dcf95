"""One token's requests against two API processes at once: how many the rate limit accepts in total (run by hand).

    .venv/bin/python bench/bench_rate_limit.py                        # this checkout, the default limit
    .venv/bin/python bench/bench_rate_limit.py --root /tmp/old-tree   # another tree (e.g. before a change)
    .venv/bin/python bench/bench_rate_limit.py --rate 1 --burst 50 --seconds 5

Two `python -m trainyard.api.serve --workers 1` servers on one SQLite file, counters in the local Redis
(redis://127.0.0.1:6379/9, a fresh key prefix); `--clients` threads (half on each server, keep-alive)
send GET /catalog with one token for `--seconds`. The limit shared by both processes (a moving window of
burst requests per burst/rate s) accepts at most burst × ceil(seconds / window) in all; the token bucket each
process kept before accepted up to 2 × (burst + rate × seconds).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/9"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose API runs")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="trainyard-bench-rl-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    env.update(PYTHONPATH=str(args.root), TRAINYARD_HOME=str(home), TRAINYARD_RATE_LIMIT_PER_SECOND=str(args.rate),
               TRAINYARD_RATE_LIMIT_BURST=str(args.burst), TRAINYARD_RATE_LIMIT_STORAGE_URL=REDIS_URL,
               TRAINYARD_BROKER_NAMESPACE=f"bench-rl-{uuid.uuid4().hex[:8]}:")
    py = sys.executable
    subprocess.run([py, "-m", "trainyard.client.cli", "migrate"], env=env, cwd=args.root, check=True, capture_output=True)
    made = subprocess.run([py, "-m", "trainyard.client.cli", "token", "create", "--user", "bench"], env=env, cwd=args.root,
                          check=True, capture_output=True, text=True)
    token = made.stdout.strip().splitlines()[-1]
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([py, "-m", "trainyard.api.serve", "--host", "127.0.0.1", "--port", str(p), "--workers", "1"],
                              env=env, cwd=args.root, stdout=open(home / f"api-{p}.log", "wb"),
                              stderr=subprocess.STDOUT) for p in ports]
    try:
        urls = [f"http://127.0.0.1:{p}/api/v1" for p in ports]
        for url in urls:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(url + "/health", timeout=2).status_code in (200, 503):
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"an API did not start; see {home}")
                time.sleep(0.2)
        counts: Counter = Counter()
        lock = threading.Lock()
        start = threading.Barrier(args.clients + 1)
        stop_at = [0.0]

        def client(i: int) -> None:
            url = urls[i % 2]
            with requests.Session() as http:
                http.headers["Authorization"] = f"Bearer {token}"
                start.wait()
                while time.monotonic() < stop_at[0]:
                    code = http.get(url + "/catalog", timeout=10).status_code
                    with lock:
                        counts[(i % 2, code)] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        stop_at[0] = time.monotonic() + args.seconds
        started = time.monotonic()
        start.wait()
        for t in threads:
            t.join()
        took = time.monotonic() - started
        sent = sum(counts.values())
        accepted = counts[(0, 200)] + counts[(1, 200)]
        print(f"tree {args.root}: rate {args.rate:g}/s burst {args.burst}, {args.seconds:g} s, {args.clients} "
              f"clients on 2 API processes")
        print(f"sent {sent} in {took:.1f} s; accepted {accepted} (process 1: {counts[(0, 200)]}, process 2: "
              f"{counts[(1, 200)]}); refused 429: {counts[(0, 429)] + counts[(1, 429)]}; other: "
              f"{sent - accepted - counts[(0, 429)] - counts[(1, 429)]}")
        window = max(1, round(args.burst / args.rate))
        amount = max(1, round(args.rate * window))
        print(f"a moving window of {amount} per {window} s shared by both processes (api/ratelimit.py) allows at most "
              f"{amount * math.ceil(took / window)}; a token bucket in each process (before) about "
              f"{2 * (args.burst + args.rate * took):.0f}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)


if __name__ == "__main__":
    main()
