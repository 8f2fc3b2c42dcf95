"""`trainyard gc [--dry-run] [--json]`: purge finished jobs past retention_days and delete unreferenced blobs.

The same `run_gc` runs in the reconciler every gc_interval_seconds while retention is on (worker.collector).
Each job is purged in its own short transaction and blobs are deleted a batch at a time, so a pass never holds
SQLite's write lock for long, and jobs keep running and uploads keep arriving while it works.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from trainyard.store import orphans, retention
from trainyard.store.db import make_sessionmaker, read_only, session_scope
from trainyard.store.models import utcnow
from trainyard.store.settings import Settings

PAGE = 200  # jobs read per query
JOBS_PER_WRITE = 20  # jobs purged per transaction
# After each write transaction on SQLite: its busy handler polls every 100 ms, so back-to-back transactions would
# keep a worker or the API waiting for the write lock until their timeout ("database is locked").
SQLITE_PAUSE = 0.1
SHOWN = 20  # jobs listed one per line in the text output (--json lists all)


@dataclass
class GcReport:
    """What one gc pass removed (or, dry, would remove)."""

    dry_run: bool
    retention_days: float
    cutoff: datetime | None  # jobs finished before this are purged; None: retention is off
    grace_seconds: float
    jobs: list[retention.PurgedJob] = field(default_factory=list)
    blobs: int = 0
    blob_bytes: int = 0

    @property
    def history_bytes(self) -> int:
        return sum(j.history_bytes for j in self.jobs)

    @property
    def bytes(self) -> int:
        """Blob bytes deleted plus the history rows' stored JSON text."""
        return self.blob_bytes + self.history_bytes

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "retention_days": self.retention_days,
                "cutoff": self.cutoff.isoformat() if self.cutoff else None, "grace_seconds": self.grace_seconds,
                "jobs_purged": len(self.jobs), "history_epochs": sum(j.history_epochs for j in self.jobs),
                "history_bytes": self.history_bytes, "artifacts": sum(j.artifacts for j in self.jobs),
                "blobs": self.blobs, "blob_bytes": self.blob_bytes, "bytes": self.bytes,
                "jobs": [j.to_dict() for j in self.jobs]}


def run_gc(*, settings: Settings, factory: sessionmaker[Session], dry_run: bool = False,
           now: datetime | None = None) -> GcReport:
    """One pass: purge the jobs retention_days allows (none when it is 0), then delete orphaned blobs older than
    gc_grace_seconds. `dry_run` changes nothing and reports what a pass would remove now."""
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.retention_days) if settings.retention_days > 0 else None
    older_than = now - timedelta(seconds=settings.gc_grace_seconds)
    report = GcReport(dry_run, settings.retention_days, cutoff, settings.gc_grace_seconds)
    reads = make_sessionmaker(read_only(factory.kw["bind"]))  # reads never take SQLite's write lock
    pause = SQLITE_PAUSE if settings.is_sqlite else 0.0
    if cutoff is not None:
        report.jobs = _purge(factory, reads, cutoff, now, dry_run, pause)
    if dry_run:
        with session_scope(reads) as session:
            purged = retention.purged_artifacts(cutoff) if cutoff is not None else None
            report.blobs, report.blob_bytes = orphans.count_orphans(session=session, older_than=older_than,
                                                                    exclude_artifacts=purged)
    else:
        collected = orphans.collect_orphans(factory=factory, read_factory=reads, older_than=older_than, pause=pause)
        report.blobs, report.blob_bytes = collected.blobs, collected.bytes
    return report


def _purge(factory: sessionmaker[Session], reads: sessionmaker[Session], cutoff: datetime, now: datetime,
           dry_run: bool, pause: float) -> list[retention.PurgedJob]:
    """The jobs purged (dry: that would be), oldest first: a page of candidates at a time, read without a write
    lock, then purged JOBS_PER_WRITE per transaction (each job re-checked by purge_job), pausing after each."""
    done: list[retention.PurgedJob] = []
    after = None
    while True:
        with session_scope(reads) as session:
            page = retention.candidates(session=session, cutoff=cutoff, limit=PAGE, after=after)
        if dry_run:
            done += page
        for start in range(0, 0 if dry_run else len(page), JOBS_PER_WRITE):
            with session_scope(factory) as session:
                done += [job for job in page[start:start + JOBS_PER_WRITE]
                         if retention.purge_job(session=session, job=job, cutoff=cutoff, now=now)]
            time.sleep(pause)
        if len(page) < PAGE:
            return done
        after = (page[-1].finished_at, page[-1].id)


def size(n: int) -> str:
    """Bytes for people: 1,234 B, 12.3 kB, 4.5 MB (powers of 1000, as `du --si`)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:,} B"


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def describe(report: GcReport) -> str:
    """The report as people read it."""
    verb = "would " if report.dry_run else ""
    lines = []
    if report.cutoff is None:
        lines.append("retention is off (TRAINYARD_RETENTION_DAYS=0): no job is purged")
    else:
        d = report.to_dict()
        lines.append(f"{verb}purge {plural(len(report.jobs), 'job')} finished before "
                     f"{report.cutoff:%Y-%m-%d %H:%M} UTC "
                     f"(retention_days={report.retention_days:g}, pinned jobs and sweeps kept): "
                     f"{d['history_epochs']:,} epochs of history ({size(report.history_bytes)}), "
                     f"{plural(d['artifacts'], 'model and checkpoint file')}")
        for job in report.jobs[:SHOWN]:
            finished = f"{job.finished_at:%Y-%m-%d}" if job.finished_at else "?"
            lines.append(f"  job {job.id} ({job.owner}, finished {finished}): {', '.join(job.removed) or 'nothing'}")
        if len(report.jobs) > SHOWN:
            lines.append(f"  … and {len(report.jobs) - SHOWN:,} more (--json lists them all)")
    lines.append(f"{verb}delete {plural(report.blobs, 'unreferenced blob')} older than {report.grace_seconds:g} s: "
                 f"{size(report.blob_bytes)}")
    lines.append(f"{'would reclaim' if report.dry_run else 'reclaimed'} {size(report.bytes)} in all")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`trainyard gc`: the exit status."""
    parser = argparse.ArgumentParser(prog="trainyard gc")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return gc_command(dry_run=args.dry_run, as_json=args.json)


def gc_command(*, dry_run: bool, as_json: bool) -> int:
    """Run one pass with the environment's settings and print its report (text, or one JSON object)."""
    from trainyard.store.db import DATABASE_UNAVAILABLE, make_engine
    from trainyard.store.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"trainyard gc: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(settings)
    try:
        report = run_gc(settings=settings, factory=make_sessionmaker(engine), dry_run=dry_run)
    except DATABASE_UNAVAILABLE as exc:
        print(f"trainyard gc: the database is unavailable: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(json.dumps(report.to_dict()) if as_json else describe(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
