"""Time to 503 when the database hangs instead of refusing (run by hand).

    .venv/bin/python bench/bench_db_hang.py                        # this checkout, default settings
    .venv/bin/python bench/bench_db_hang.py --root /tmp/old-tree   # another tree (e.g. before a change)
    .venv/bin/python bench/bench_db_hang.py --env TRAINYARD_DB_RESPONSE_TIMEOUT_SECONDS=3

The API (one gunicorn process) reaches a scratch PostgreSQL database through a loopback proxy
(tests.support.cluster.TcpProxy). Once its pool holds a connection, the proxy stops forwarding
without closing anything; GET /jobs, POST /jobs and GET /health are then timed (each gives up after
`--bound` s), then the proxy forwards again and the time until GET /jobs answers 200 is timed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support
sys.path.insert(0, str(ROOT / "bench"))


def timed(method: str, url: str, bound: float, **kw) -> str:
    started = time.monotonic()
    try:
        code = requests.request(method, url, timeout=bound, **kw).status_code
    except requests.RequestException:
        return f"no answer within {bound:g} s"
    return f"{code} in {time.monotonic() - started:.2f} s"


def main() -> None:
    from bench_api import scratch_postgres
    from tests.support.cluster import TcpProxy
    from tests.support.processes import free_port
    from sqlalchemy.engine import make_url

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose API runs")
    parser.add_argument("--bound", type=float, default=60.0, help="seconds a request may take before it is a hang")
    parser.add_argument("--env", action="append", default=[], metavar="TRAINYARD_X=V")
    args = parser.parse_args()

    url, drop = scratch_postgres()
    target = make_url(url)
    proxy = TcpProxy((target.host, target.port or 5432))
    proxy.start()
    home = Path(tempfile.mkdtemp(prefix="trainyard-bench-hang-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    env.update(PYTHONPATH=str(args.root), TRAINYARD_HOME=str(home), TRAINYARD_BROKER_URL="redis://127.0.0.1:6379/9",
               TRAINYARD_BROKER_NAMESPACE=f"bench-hang-{uuid.uuid4().hex[:8]}:",
               TRAINYARD_DATABASE_URL=target.set(host="127.0.0.1", port=proxy.port)
               .render_as_string(hide_password=False))
    env.update(item.split("=", 1) for item in args.env)
    py = sys.executable
    subprocess.run([py, "-m", "trainyard.client.cli", "migrate"], env=env, cwd=args.root, check=True, capture_output=True)
    token = subprocess.run([py, "-m", "trainyard.client.cli", "token", "create", "--user", "bench"], env=env, cwd=args.root,
                           check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    api = subprocess.Popen([py, "-m", "trainyard.api.serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                           env=env, cwd=args.root, stdout=open(home / "api.log", "wb"), stderr=subprocess.STDOUT)
    base, auth = f"http://127.0.0.1:{port}/api/v1", {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/jobs", headers=auth, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the API did not start; see {home}/api.log")
            time.sleep(0.2)
        spec = {"dataset": {"builtin": "xor"}, "model": {"layers": [{"type": "dense", "units": 1}]}}
        print(f"tree {args.root}; {' '.join(args.env) or 'default settings'}")
        proxy.hang()
        print("hung:")
        print("  GET /jobs (pooled connection)  ", timed("GET", base + "/jobs", args.bound, headers=auth))
        print("  GET /jobs (again)              ", timed("GET", base + "/jobs", args.bound, headers=auth))
        print("  POST /jobs                     ", timed("POST", base + "/jobs", args.bound, headers=auth, json=spec))
        print("  GET /health                    ", timed("GET", base + "/health", args.bound))
        proxy.forward()
        started = time.monotonic()
        while True:
            try:
                if requests.get(base + "/jobs", headers=auth, timeout=args.bound).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        print(f"forwarding again: GET /jobs 200 after {time.monotonic() - started:.2f} s")
    finally:
        api.terminate()
        api.wait(10)
        proxy.stop()
        drop()


if __name__ == "__main__":
    main()
