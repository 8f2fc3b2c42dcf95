"""Orphaned blobs: those no row refers to, found and deleted with the reference check in the DELETE itself.

Every foreign key to `blobs.sha256` in the models is a reference (today datasets' file and labels and every
artifact); a table added later with such a key is covered without a change here. A blob is deleted only when it
is older than the grace age and, in the same statement, still unreferenced; the foreign keys stay the last word
(a reference committed between the statement's snapshot and its end makes the DELETE fail, and that blob is kept).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, not_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trainyard.store.models import Artifact, Base, Blob

BATCH = 100  # blobs deleted per transaction: SQLite holds its one write lock for a batch, never for a whole pass


@lru_cache(maxsize=1)
def blob_references() -> tuple:
    """Every column with a foreign key to blobs.sha256, as (table, column) pairs."""
    refs = []
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == Blob.__tablename__ and fk.column.name == "sha256":
                refs.append((table, fk.parent))
    return tuple(refs)


def unreferenced(exclude_artifacts: ColumnElement[bool] | None = None) -> ColumnElement[bool]:
    """A condition on Blob: no row refers to it (rows of `artifacts` matching `exclude_artifacts` aside)."""
    clauses = []
    for table, column in blob_references():
        where = column == Blob.sha256
        if exclude_artifacts is not None and table is Artifact.__table__:
            where = and_(where, not_(exclude_artifacts))
        clauses.append(~exists().where(where))
    return and_(true(), *clauses)


def orphans(*, older_than: datetime, exclude_artifacts: ColumnElement[bool] | None = None) -> Select:
    """`(sha256, size_bytes)` of unreferenced blobs created before `older_than`, by sha256 (never their bytes)."""
    return (select(Blob.sha256, Blob.size_bytes)
            .where(Blob.created_at < older_than, unreferenced(exclude_artifacts)).order_by(Blob.sha256))


def count_orphans(*, session: Session, older_than: datetime,
                  exclude_artifacts: ColumnElement[bool] | None = None) -> tuple[int, int]:
    """`(blobs, bytes)` that a collection would delete now (with `exclude_artifacts` already gone)."""
    found = orphans(older_than=older_than, exclude_artifacts=exclude_artifacts).subquery()
    count, size = session.execute(select(func.count(), func.coalesce(func.sum(found.c.size_bytes), 0))).one()
    return int(count), int(size)


def delete_if_orphan(*, session: Session, sha256: str, older_than: datetime) -> bool:
    """Delete the blob when, at this moment, it is older than `older_than` and unreferenced; True if deleted."""
    statement = delete(Blob).where(Blob.sha256 == sha256, Blob.created_at < older_than, unreferenced())
    try:
        with session.begin_nested():  # a reference committed meanwhile fails the foreign key: keep the blob
            return session.execute(statement.execution_options(synchronize_session=False)).rowcount == 1
    except IntegrityError:
        return False


@dataclass
class Collected:
    blobs: int = 0
    bytes: int = 0


def collect_orphans(*, factory, read_factory, older_than: datetime, pause: float = 0.0) -> Collected:
    """Delete every orphan older than `older_than`, BATCH per transaction; what was deleted.

    Args:
        factory, read_factory: sessionmakers for writes and for reads (a read takes no SQLite write lock).
        pause: seconds to sleep after each write transaction, so that on SQLite other processes waiting for the
            write lock get it (its busy handler polls every 100 ms; back-to-back transactions would starve them).
    """
    from trainyard.store.db import session_scope

    done, after = Collected(), ""
    while True:
        with session_scope(read_factory) as session:
            batch = session.execute(orphans(older_than=older_than).where(Blob.sha256 > after).limit(BATCH)).all()
        if batch:
            with session_scope(factory) as session:
                for sha, size in batch:
                    if delete_if_orphan(session=session, sha256=sha, older_than=older_than):
                        done.blobs, done.bytes = done.blobs + 1, done.bytes + size
            time.sleep(pause)
        if len(batch) < BATCH:
            return done
        after = batch[-1][0]
