"""Server-Sent Events for a job: the stream, and the shared feed every stream of a process polls.

Many streams may watch one job (the dashboard opens one per browser tab). Each stream
polls every POLL_SECONDS, but what it asks — the job's status and epoch, the history rows
after an epoch, whether a token still authenticates — is asked of the database once per
POLL_SECONDS per process however many streams ask it (`Feed`). A poll reads only the
job's status and epoch; the whole job body is read when the status changes. Each poll
uses its own short read session, so nothing is held open between polls.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, Callable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from trainyard.api import views
from trainyard.api.jsonio import dumps
from trainyard.store import jobs as repo
from trainyard.store.models import FINISHED, Job
from trainyard.store.settings import Settings
from trainyard.store.tokens import verify_token

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
ROWS_PER_POLL = 1000  # a replay of a long history is sent in slices, each stream at its own pace


class Feed:
    """Answers shared for POLL_SECONDS by every stream of this process: one query per question, not per stream.

    When an answer expires, the first stream to ask reloads it and the others wait for that load
    (no stampede of identical queries), and at most QUERIES loads run at once, so streams never
    take every pooled connection from ordinary requests.
    """

    QUERIES = 2

    def __init__(self, sessions: sessionmaker[Session], ttl: float = POLL_SECONDS):
        self.sessions, self.ttl = sessions, ttl
        self._answers: dict[tuple, tuple[float, Any]] = {}
        self._loading: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()
        self._queries = threading.BoundedSemaphore(self.QUERIES)
        self._swept = time.monotonic()

    def _fresh(self, key: tuple) -> tuple[bool, Any]:
        hit = self._answers.get(key)
        return (True, hit[1]) if hit is not None and hit[0] > time.monotonic() else (False, None)

    def _ask(self, key: tuple, query: Callable[[Session], Any]) -> Any:
        found, answer = self._fresh(key)
        if found:
            return answer
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        try:
            with gate:  # one load per key; the others wait for it and then find it fresh
                found, answer = self._fresh(key)
                if found:
                    return answer
                with self._queries, self.sessions() as db:
                    answer = query(db)
                with self._lock:
                    now = time.monotonic()
                    if now - self._swept > self.ttl:  # expired answers (a replay's slices) are dropped at once
                        self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
                        self._swept = now
                    self._answers[key] = (now + self.ttl, answer)
        finally:
            with self._lock:
                self._loading.pop(key, None)
        return answer

    def ask(self, key: tuple, query: Callable[[Session], Any]) -> Any:
        """`query(session)`'s answer, shared under `key` for the feed's ttl (for other resources' streams)."""
        return self._ask(key, query)

    def progress(self, job_id: str) -> tuple[str, int, int] | None:
        """(status, epoch, epochs) of the job, or None once it is deleted."""
        def query(db):
            row = db.execute(select(Job.status, Job.epoch, Job.epochs).where(Job.id == job_id)).first()
            return None if row is None else (row.status, row.epoch or 0, row.epochs)
        return self._ask(("job", job_id), query)

    def progress_events(self, job_id: str, since: int, epoch: int, status: str, epochs: int) -> tuple[str, int]:
        """The `progress` events of the epochs after `since` (at most ROWS_PER_POLL, as of `epoch`), encoded once
        for every stream that needs the same slice, and the last epoch they carry."""
        until = min(since + ROWS_PER_POLL, epoch)

        def query(db):
            rows = repo.history_rows(session=db, job_id=job_id, since=since, until=until)
            # An epoch is only ever made by a running job: a replay after the end says so too, not the final status
            # (which only the `status` event carries).
            text = "".join(event("progress", {"status": "running", "epoch": row["epoch"], "epochs": epochs, **row},
                                 row["epoch"]) for row in rows)
            # Rows and the job's epoch are written in one transaction, so epochs of this range with no row never
            # get one (a lost or trimmed history): move past them rather than wait for them forever.
            return text, rows[-1]["epoch"] if rows else until
        return self._ask(("progress", job_id, since, until, status, epochs), query)

    def body(self, job_id: str, status: str, epoch: int) -> dict | None:
        """The job's body as GET /jobs/{id} shows it (without queue position), read once per status and epoch."""
        def query(db):
            job = db.get(Job, job_id)
            return None if job is None else views.job_body(job)
        return self._ask(("body", job_id, status, epoch), query)

    def owner_of(self, token: str) -> str | None:
        """The user id `token` authenticates now, or None (unknown, revoked or expired)."""
        def query(db):
            user = verify_token(session=db, token=token)
            return None if user is None else user.id
        return self._ask(("token", hashlib.sha256(token.encode()).hexdigest()), query)  # no secret kept as a key


def event(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {dumps(data)}\n\n"


def stream(feed: Feed, settings: Settings, job_id: str, since: int, *, token: str | None,
           owner: str) -> Iterator[str]:
    """`progress` per new epoch (id = epoch), `status` on every status change; ends after the terminal status.

    The token is re-checked every `stream_recheck_seconds` (a revoked or expired token ends the stream
    with an `error` event), and a stream ends after `stream_max_seconds`: clients reconnect
    with Last-Event-ID, which authenticates them again.
    """
    status, started = None, time.monotonic()
    last_sent = checked = started
    yield "retry: 2000\n\n"
    while time.monotonic() - started < settings.stream_max_seconds:
        if token is not None and time.monotonic() - checked >= settings.stream_recheck_seconds:
            checked = time.monotonic()
            if feed.owner_of(token) != owner:
                yield event("error", {"type": "urn:trainyard:problem:unauthorized", "status": 401,
                                      "detail": "the token was revoked or has expired; the stream ends"})
                return
        progress = feed.progress(job_id)
        if progress is None:  # deleted meanwhile
            yield event("status", {"id": job_id, "status": "deleted"})
            return
        now_status, epoch, epochs = progress
        sent = ""
        if epoch > since:
            sent, since = feed.progress_events(job_id, since, epoch, now_status, epochs)
            if sent:
                yield sent  # one write of every new epoch, not one per epoch
        body = feed.body(job_id, now_status, epoch) if now_status != status and since >= epoch else None
        if body is not None:
            status = now_status
            yield event("status", body)
            if status in FINISHED:
                return
        if sent or body is not None:
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        # Caught up: wait for the next poll. A replay goes on at once, letting other requests run in between.
        time.sleep(POLL_SECONDS if since >= epoch else 0)
