"""store.blobs.put_blob on PostgreSQL when another transaction inserts the same bytes first: put_blob waits for it,
returns the blob that transaction committed, and holds it FOR KEY SHARE like a blob it found, so a concurrent
delete_blob_if_unreferenced waits until put_blob's transaction ends.

The sessions are interleaved by hand: a holder transaction stays open, put_blob and the delete run on threads, and
the test goes on only once the thread's own backend is seen waiting on a lock (pg_locks), so the interleaving is
exactly the racy one. SQLite serialises whole write transactions: nothing to interleave there.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from tests.support.processes import wait_for
from trainyard.store.blobs import delete_blob_if_unreferenced, put_blob, sha256_hex
from trainyard.store.db import session_scope
from trainyard.store.models import Blob

DATA = b"the same bytes, put by two transactions"


class InThread:
    """`work(session)` on a thread, in its own transaction, which stays open until `finish()`."""

    def __init__(self, factory, work):
        self.pid: int | None = None
        self.outcome: list = []
        self.done, self._finish = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, args=(factory, work), daemon=True)
        self.thread.start()

    def _run(self, factory, work) -> None:
        try:
            with session_scope(factory) as s:
                self.pid = s.scalar(text("SELECT pg_backend_pid()"))
                try:
                    self.outcome.append(work(s))
                finally:
                    self.done.set()
                self._finish.wait(60)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            self.outcome.append(exc)
            self.done.set()

    def finish(self) -> None:
        self._finish.set()
        self.thread.join(60)


def waits_on_a_lock(factory, pid: int | None) -> bool:
    with session_scope(factory) as probe:
        return pid is not None and bool(probe.scalar(
            text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted"), {"pid": pid}))


@pytest.mark.parametrize("db_settings", ["postgres"], indirect=True)
def test_a_blob_another_transaction_inserted_first_is_returned_and_locked(session_factory):
    digest = sha256_hex(DATA)
    holder = session_factory()
    try:
        assert put_blob(session=holder, data=DATA) == digest  # inserted, not committed
        putter = InThread(session_factory, lambda s: put_blob(session=s, data=DATA))
        # Its SELECT cannot see the uncommitted row, so it goes on to the INSERT, which waits for the holder.
        state = wait_for(lambda: "done" if putter.done.is_set() else waits_on_a_lock(session_factory, putter.pid),
                         60, "put_blob to wait for the holder's insert")
        assert state is True, putter.outcome
        holder.commit()
    finally:
        holder.close()
    try:
        assert putter.done.wait(60)
        assert putter.outcome == [digest]  # the holder's blob, not an error
        # put_blob's transaction is still open: the blob it returned is locked FOR KEY SHARE, so a delete waits.
        deleter = InThread(session_factory, lambda s: delete_blob_if_unreferenced(session=s, sha256=digest))
        try:
            state = wait_for(lambda: "done" if deleter.done.is_set() else waits_on_a_lock(session_factory, deleter.pid),
                             60, "the delete to wait for put_blob's lock or to end")
            assert state is True, f"the delete did not wait for put_blob's transaction: {deleter.outcome}"
        finally:
            putter.finish()
            deleter.finish()
        assert deleter.outcome == [True]  # once put_blob's transaction ended, nothing referred to the blob
    finally:
        putter.finish()
    with session_scope(session_factory) as s:
        assert s.scalar(select(Blob.sha256).where(Blob.sha256 == digest)) is None
