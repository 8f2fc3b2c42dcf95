"""What one GET /api/v1/metrics scrape costs with N finished jobs in the database (run by hand).

    .venv/bin/python bench/bench_metrics.py                 # SQLite, 10,000 jobs
    .venv/bin/python bench/bench_metrics.py --postgres      # a scratch PostgreSQL database (dropped afterwards)
    .venv/bin/python bench/bench_metrics.py --jobs 100000 --scrapes 20

The jobs are inserted directly (finished, with start, finish and errors spread over the histogram buckets); the
app is the real one, in-process (no HTTP). Prints the median and worst scrape time and the size of the answer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _insert(settings, n: int) -> None:
    from sqlalchemy import insert

    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.models import Job
    from trainyard.store.tokens import get_or_create_user

    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    now = datetime.now(timezone.utc)
    with session_scope(sessions) as s:
        owner = get_or_create_user(session=s, name="bench").id
    rows = []
    for i in range(n):
        status = ("succeeded", "failed", "cancelled")[i % 3]
        created = now + timedelta(seconds=1 + i % 50)
        started = created + timedelta(milliseconds=37 * (i % 97))
        rows.append(dict(id=uuid.uuid4().hex[:24], owner_id=owner, name=f"j{i}", backend="numpy", device="cpu",
                         spec={}, status=status, attempts=1 + i % 2, epoch=1, epochs=1, created_at=created,
                         published_at=created, started_at=started,
                         finished_at=started + timedelta(seconds=(i % 5000) / 3),
                         error={"code": ("diverged", "timeout")[i % 2], "message": "x"} if status == "failed" else None))
    with session_scope(sessions) as s:
        for chunk in range(0, n, 5000):
            s.execute(insert(Job), rows[chunk:chunk + 5000])
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=10)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()

    import sqlalchemy

    from trainyard.api.app import create_app
    from trainyard.store.migrate import upgrade
    from trainyard.store.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    admin = name = None
    if args.postgres:
        admin = sqlalchemy.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        name = f"bench_metrics_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        settings = Settings(home=home, database_url=admin.url.set(database=name).render_as_string(False))
    else:
        settings = Settings(home=home)
    try:
        upgrade(settings)
        app = create_app(settings)  # its metrics count from now: the jobs below finish after it
        _insert(settings, args.jobs)
        client = app.test_client()
        times, size = [], 0
        for _ in range(args.scrapes):
            started = time.perf_counter()
            r = client.get("/api/v1/metrics")
            times.append(time.perf_counter() - started)
            size = len(r.data)
            assert r.status_code == 200 and b"trainyard_jobs_finished_total" in r.data
        print(f"{'postgres' if args.postgres else 'sqlite'}: {args.jobs} finished jobs, {args.scrapes} scrapes: "
              f"median {statistics.median(times) * 1000:.1f} ms, worst {max(times) * 1000:.1f} ms, {size} bytes")
        app.extensions["trainyard"].engine.dispose()
    finally:
        if admin is not None:
            with admin.connect() as c:
                c.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
