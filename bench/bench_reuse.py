"""Issue 9's reuse figure: a reused job's submit → succeeded latency, beside the same job trained (run by hand).

    .venv/bin/python bench/bench_reuse.py               # embedded: SQLite + file broker
    .venv/bin/python bench/bench_reuse.py --postgres    # production layout: PostgreSQL + Redis
    .venv/bin/python bench/bench_reuse.py --repeats 200 --trained 5

A real API (gunicorn, gevent), one worker and the reconciler run as processes on loopback
(bench_hostile.service). The digits spec of examples/digits_32.json trains once; then
`--repeats` identical submits each answer 201 with the job already succeeded: the time from
sending POST /jobs to holding a succeeded job is that one request. For comparison,
`--trained` submits of the same spec with `"reuse": false` are polled every 5 ms until
they succeed. Goal: reused p50 <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_hostile import service  # noqa: E402

SPEC = json.loads((ROOT / "examples" / "digits_32.json").read_text())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def submit_until_succeeded(http: requests.Session, url: str, spec: dict) -> tuple[float, dict]:
    """Milliseconds from sending the submit to seeing the job succeeded (polling every 5 ms), and the job."""
    t0 = time.perf_counter()
    r = http.post(url + "/jobs", json=spec, timeout=30)
    r.raise_for_status()
    job = r.json()
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.005)
        job = http.get(f"{url}/jobs/{job['id']}", timeout=30).json()
    elapsed = (time.perf_counter() - t0) * 1000
    if job["status"] != "succeeded":
        raise SystemExit(f"job {job['id']} {job['status']}: {job['error']}")
    return elapsed, job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis instead of SQLite + file broker")
    parser.add_argument("--repeats", type=int, default=100, help="reused submits to time")
    parser.add_argument("--trained", type=int, default=5, help="submits with reuse false to time")
    args = parser.parse_args()
    with service(args.postgres, user="bench") as (url, _port, token, _procs), requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {token}"
        trained_ms = []
        for _ in range(args.trained):
            ms, original = submit_until_succeeded(http, url, {**SPEC, "reuse": False})
            trained_ms.append(ms)
        reused_ms = []
        for _ in range(args.repeats):
            ms, job = submit_until_succeeded(http, url, SPEC)
            assert job["reused_from"] is not None and job["attempts"] == 0, job
            reused_ms.append(ms)
        layout = "PostgreSQL + Redis" if args.postgres else "SQLite + file broker"
        print(f"{layout}: digits_32 ({SPEC['training']['epochs']} epochs), submit -> succeeded")
        for name, values in (("trained (reuse false)", trained_ms), ("reused", reused_ms)):
            print(f"  {name:22s} n={len(values):4d}  p50 {statistics.median(values):8.1f} ms  "
                  f"p90 {percentile(values, 0.9):8.1f} ms  max {max(values):8.1f} ms")


if __name__ == "__main__":
    main()
