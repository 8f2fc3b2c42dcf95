"""Content-addressed blobs: stored once per sha256, verified on every read, deleted when nothing refers to them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trainyard.store.errors import BlobCorrupt, NotFound
from trainyard.store.models import Blob


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_blob(*, session: Session, data: bytes) -> str:
    """Store `data` unless a blob with its sha256 exists; return the sha256."""
    return put_blobs(session=session, blobs=[data])[0]


def put_blobs(*, session: Session, blobs: Sequence[bytes]) -> list[str]:
    """Store each of `blobs` whose sha256 is not stored yet; return their sha256s, in order. Two statements for any
    number of blobs: the SELECT of those stored, then one INSERT of the others (bytes already stored are never sent).
    """
    digests = [sha256_hex(data) for data in blobs]
    missing, table = dict(zip(digests, blobs)), Blob.__table__  # Core statements: no ORM bulk layer
    # FOR KEY SHARE (PostgreSQL): an existing blob cannot be deleted (store.orphans) until this transaction, which
    # is about to refer to it, ends; one being deleted is waited for and then found gone (and inserted again).
    # SQLite has no row locks: its transactions that write are serialised whole.
    # No bound on the loop: it turns again only when the INSERT met a committed row (after waiting for its inserter)
    # and another transaction deleted that row before the SELECT, so each extra turn needs a fresh insert and delete
    # of these very bytes by others. (Under REPEATABLE READ PostgreSQL raises a serialization error, never loops.)
    while missing:
        for digest in session.scalars(select(table.c.sha256).where(table.c.sha256.in_(missing))
                                      .with_for_update(read=True, key_share=True)):
            del missing[digest]
        if not missing:
            break
        insert = _INSERTS[session.get_bind().dialect.name]
        # One statement: another transaction may insert the same bytes first (then it is locked as above).
        rows = [{"sha256": digest, "size_bytes": len(data), "data": data} for digest, data in missing.items()]
        for digest in session.scalars(insert(table).on_conflict_do_nothing(index_elements=["sha256"])
                                      .returning(table.c.sha256), rows):  # executemany: one INSERT … VALUES
            del missing[digest]
    return digests


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}  # both say ON CONFLICT DO NOTHING


def get_blob(*, session: Session, sha256: str) -> bytes:
    """The bytes stored under `sha256`, checked against it (BlobCorrupt if they differ)."""
    data = session.scalar(select(Blob.data).where(Blob.sha256 == sha256))
    if data is None:
        raise NotFound(f"no blob {sha256}")
    data = bytes(data)
    if sha256_hex(data) != sha256:
        raise BlobCorrupt(f"blob {sha256} does not match its sha256")
    return data


def delete_blob_if_unreferenced(*, session: Session, sha256: str | None) -> bool:
    """Delete the blob unless a dataset or artifact still refers to it; True if deleted.

    The foreign keys decide: a referenced blob cannot be deleted, so a concurrent
    transaction that starts referring to it can never be left dangling.
    """
    if sha256 is None:
        return False
    try:
        with session.begin_nested():
            return session.execute(delete(Blob).where(Blob.sha256 == sha256)).rowcount == 1
    except IntegrityError:
        return False
