"""Issue 14 item 4's figure: what retention and gc reclaim on a small scenario (run by hand).

    .venv/bin/python bench/bench_gc.py               # SQLite in a temporary folder
    .venv/bin/python bench/bench_gc.py --postgres    # a temporary PostgreSQL database on 127.0.0.1:5432

24 digits jobs (64 → 128 ReLU → 10 softmax, 20 epochs, one seed each, so 24 distinct models) are trained
in-process and recorded as a worker records them (history, checkpoints, model, confusion matrices); 16 are
back-dated 40 days, 2 of those pinned; one 1 MB upload lost its dataset row (an orphan). With retention_days 30,
`trainyard gc --dry-run` is run, then gc, then gc again. Printed: what each pass reports, the blob and history
bytes stored before and after, and how long each pass took. Before this change nothing was ever removed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from sqlalchemy import Text, cast, create_engine, func, select, text, update  # noqa: E402

from trainyard.core.callbacks import Callbacks  # noqa: E402
from trainyard.core.job import train_job  # noqa: E402
from trainyard.core.validate import validate_spec  # noqa: E402
from trainyard.store.blobs import put_blob  # noqa: E402
from trainyard.store.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from trainyard.store.gc import describe, run_gc  # noqa: E402
from trainyard.store.jobs import create_job  # noqa: E402
from trainyard.store.migrate import upgrade  # noqa: E402
from trainyard.store.models import Blob, HistoryChunk, Job, utcnow  # noqa: E402
from trainyard.store.retention import set_pinned  # noqa: E402
from trainyard.store.runs import claim_job, finish_job, heartbeat, record_epochs, save_checkpoint  # noqa: E402
from trainyard.store.settings import Settings  # noqa: E402
from trainyard.store.tokens import get_or_create_user  # noqa: E402

SPEC = {"dataset": {"builtin": "digits"},
        "model": {"layers": [{"type": "dense", "units": 128, "activation": "relu"},
                             {"type": "dense", "units": 10, "activation": "softmax"}]},
        "training": {"epochs": 20, "batch_size": 64, "checkpoint_every": 5}}


def record(factory, owner: str, seed: int) -> str:
    """Train one job in-process and store it as a worker does."""
    doc = {**SPEC, "training": {**SPEC["training"], "seed": seed}}
    with session_scope(factory) as s:
        job_id = create_job(session=s, owner=owner, spec=validate_spec({**doc, "reuse": False}))[0].id
    with session_scope(factory) as s:
        attempt = claim_job(session=s, job_id=job_id, worker="bench", lease_seconds=600).attempts
    checkpoints: list[tuple[int, bytes]] = []
    result = train_job(validate_spec(doc), Callbacks(on_checkpoint=lambda e, b: checkpoints.append((e, b))))
    with session_scope(factory) as s:
        record_epochs(session=s, job_id=job_id, rows=result.history)
        heartbeat(session=s, job_id=job_id, attempt=attempt, lease_seconds=600, epoch=len(result.history))
        for epoch, state in checkpoints:
            save_checkpoint(session=s, job_id=job_id, attempt=attempt, epoch=epoch, state=state)
    with session_scope(factory) as s:
        finish_job(session=s, job_id=job_id, attempt=attempt, status="succeeded", metrics=result.metrics,
                   model=result.model, model_format=result.format, versions=result.versions,
                   epoch=len(result.history))
    return job_id


def stored(factory) -> tuple[int, int]:
    """(blob bytes, history JSON bytes) in the database."""
    with session_scope(factory) as s:
        blobs = s.scalar(select(func.coalesce(func.sum(Blob.size_bytes), 0)))
        history = s.scalar(select(func.coalesce(func.sum(func.length(cast(HistoryChunk.rows, Text))), 0)))
    return int(blobs), int(history)


def scenario(settings: Settings) -> None:
    upgrade(settings)
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        owner = get_or_create_user(session=s, name="bench").id
    started = time.perf_counter()
    jobs = [record(factory, owner, seed) for seed in range(24)]
    print(f"trained and recorded 24 jobs in {time.perf_counter() - started:.1f} s")
    with session_scope(factory) as s:
        then = utcnow() - timedelta(days=40)
        s.execute(update(Job).where(Job.id.in_(jobs[:16])).values(finished_at=then))
        for job_id in jobs[:2]:
            set_pinned(session=s, owner=owner, job_id=job_id, pinned=True)
        put_blob(session=s, data=os.urandom(2**20))  # an upload whose dataset row never came
        s.execute(update(Blob).values(created_at=then))
    settings = settings.replace(retention_days=30.0)
    before = stored(factory)
    print(f"stored before: blobs {before[0]:,} B, history {before[1]:,} B")
    for label, dry in (("dry run", True), ("gc", False), ("gc again", False)):
        t0 = time.perf_counter()
        report = run_gc(settings=settings, factory=factory, dry_run=dry)
        took = time.perf_counter() - t0
        d = report.to_dict()
        print(f"--- {label}: {took * 1000:.0f} ms; jobs {d['jobs_purged']}, blobs {d['blobs']}, "
              f"blob bytes {d['blob_bytes']:,}, history bytes {d['history_bytes']:,}, total {d['bytes']:,}")
        print("    " + "\n    ".join(line for line in describe(report).splitlines() if not line.startswith("  ")))
    after = stored(factory)
    print(f"stored after: blobs {after[0]:,} B, history {after[1]:,} B "
          f"(reclaimed {before[0] - after[0]:,} + {before[1] - after[1]:,} B)")
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        if not args.postgres:
            scenario(Settings(home=Path(home)))
            return 0
        admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        name = f"bench_gc_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            scenario(Settings(home=Path(home), database_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"))
        finally:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
