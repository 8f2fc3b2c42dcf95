"""The dashboard's speed in headless Debian chromium (run by hand; issue 10):

    .venv/bin/python bench/bench_dashboard.py [--jobs 10000] [--epochs 10000] [--samples 20]

A real API (`python -m trainyard.api.serve`, 2 processes) on a fresh SQLite home (no worker: the bench plays the worker's part,
so it knows when an epoch is recorded). Printed:

- jobs page: navigation start → the first page of rows drawn, with `--jobs` jobs of the signed-in user;
- job page: navigation start → its curves drawn from a `--epochs`-epoch history (`body[data-ready=yes]`);
- a new epoch: the bench records one epoch of a running job (as the worker does: rows and heartbeat in one
  transaction) → the open job page's chart has it (its own clock, same machine), `--samples` times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support

from playwright.sync_api import sync_playwright  # noqa: E402

from trainyard.store.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from trainyard.store.models import Job, User  # noqa: E402
from trainyard.store.runs import claim_job, heartbeat, record_epochs  # noqa: E402
from trainyard.store.settings import Settings  # noqa: E402

from tests.support.livestack import live_stack  # noqa: E402

XOR = {"name": "bench", "dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 10, "seed": 1, "batch_size": 4}}


def submit(stack, page, spec) -> dict:
    r = page.context.request.post(stack.url + "/api/v1/jobs", data=spec,
                                  headers={"Authorization": f"Bearer {stack.token}"})
    assert r.ok, r.text()
    return r.json()


def clone_jobs(factory, template_id: str, n: int) -> None:
    """n copies of a submitted job's row (succeeded, with metrics), inserted in bulk."""
    with session_scope(factory) as s:
        t = s.get(Job, template_id)
        cols = {c.key: getattr(t, c.key) for c in Job.__table__.columns if c.key not in ("id", "idempotency_key")}
        cols.update(status="succeeded", epoch=t.epochs, metrics={"loss": 0.01, "accuracy": 1.0})
        s.bulk_insert_mappings(Job, [{**cols, "name": f"bench-{i}"} for i in range(n)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=10_000)
    p.add_argument("--samples", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, live_stack(Settings(home=Path(tmp) / "home"), worker=False) as stack:
        engine = make_engine(stack.settings)
        factory = make_sessionmaker(engine)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(stack.url + "/ui/signin")
            page.fill("#token", stack.token)
            page.click("#token-form button[type=submit]")
            page.wait_for_url("**/ui/jobs")

            template = submit(stack, page, XOR)
            clone_jobs(factory, template["id"], args.jobs - 2)
            long = submit(stack, page, {**XOR, "name": "long", "training": {**XOR["training"], "epochs": 10 ** 6}})
            with session_scope(factory) as s:
                attempt = claim_job(session=s, job_id=long["id"], worker="bench", lease_seconds=600).attempts
            rows = [{"epoch": e, "loss": 1 / e, "accuracy": min(1.0, e / args.epochs), "time": e * 1e-3}
                    for e in range(1, args.epochs + 1)]
            for start in range(0, len(rows), 1000):
                with session_scope(factory) as s:
                    record_epochs(session=s, job_id=long["id"], rows=rows[start:start + 1000])
                    heartbeat(session=s, job_id=long["id"], attempt=attempt, lease_seconds=600,
                              epoch=rows[start:start + 1000][-1]["epoch"])

            def timed(url: str, ready: str) -> float:
                page.goto("about:blank")
                page.goto(url)
                page.wait_for_selector(ready, timeout=60_000)
                return page.evaluate("performance.now()") / 1000

            def api_ms(path_part: str) -> float:  # how long the page's own API calls took (resource timing)
                return page.evaluate("""part => performance.getEntriesByType('resource')
                    .filter(e => e.name.includes(part)).reduce((t, e) => t + e.duration, 0)""", path_part)

            jobs_times, jobs_api = [], []
            for _ in range(5):
                jobs_times.append(timed(stack.url + "/ui/jobs", "#jobs tbody tr[data-id]"))
                jobs_api.append(api_ms("/api/v1/jobs?"))
            job_times, job_api = [], []
            for _ in range(5):
                job_times.append(timed(f"{stack.url}/ui/jobs/{long['id']}", "body[data-ready=yes]"))
                job_api.append(api_ms("/history"))
                marks = page.evaluate("""() => Object.fromEntries(performance.getEntriesByType('mark')
                    .map(m => [m.name, Math.round(m.startTime)]))""")
                print("  job page marks (ms since navigation):", marks)
            drawn = page.evaluate("document.getElementById('loss-chart').data[0].x.length")
            with session_scope(factory) as s:
                total = s.query(Job).count()
            print(f"jobs page, {total} jobs: first page drawn in {statistics.median(jobs_times) * 1000:.0f} ms "
                  f"(median of 5; {min(jobs_times) * 1000:.0f}-{max(jobs_times) * 1000:.0f}); "
                  f"its GET /api/v1/jobs took {statistics.median(jobs_api):.0f} ms")
            print(f"job page, {drawn}-epoch history: curves drawn in {statistics.median(job_times) * 1000:.0f} ms "
                  f"(median of 5; {min(job_times) * 1000:.0f}-{max(job_times) * 1000:.0f}); "
                  f"its GET …/history took {statistics.median(job_api):.0f} ms")

            # The page notes (epoch → Date.now()) when each epoch reaches its chart.
            page.evaluate("""() => { window.__seen = {}; const gd = document.getElementById('loss-chart');
                const check = () => { const xs = gd.data[0].x; const e = xs[xs.length - 1];
                    if (!(e in window.__seen)) window.__seen[e] = Date.now(); requestAnimationFrame(check); };
                check(); }""")
            latencies, epoch = [], args.epochs
            for _ in range(args.samples):
                epoch += 1
                with session_scope(factory) as s:
                    record_epochs(session=s, job_id=long["id"], rows=[{"epoch": epoch, "loss": 1 / epoch,
                                                                       "accuracy": 1.0, "time": 1.0}])
                    heartbeat(session=s, job_id=long["id"], attempt=attempt, lease_seconds=600, epoch=epoch)
                recorded = time.time() * 1000
                page.wait_for_function(f"() => window.__seen[{epoch}] !== undefined", timeout=30_000)
                latencies.append(page.evaluate(f"window.__seen[{epoch}]") - recorded)
                time.sleep(0.3)
            print(f"new epoch → open page: median {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms "
                  f"({args.samples} epochs)")
            browser.close()
        engine.dispose()


if __name__ == "__main__":
    main()
