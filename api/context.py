"""What the routes share: the per-app State (settings, engine, caches) and the per-request database session."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from trainyard.api.predicting import PredictorCache
from trainyard.api.tokencache import TokenCache
from trainyard.store.db import make_sessionmaker, read_only, session_scope
from trainyard.store.settings import Settings


ACTIVE_REQUESTS = 4


def read_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that only read: autocommit on PostgreSQL (a read needs no transaction, and skipping BEGIN/ROLLBACK
    halves a small request's round trips), a deferred transaction on SQLite (never the write lock)."""
    return make_sessionmaker(read_only(engine))


@dataclass
class State:
    """One per app (so tests can run several apps in one process)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]  # writes: BEGIN IMMEDIATE on SQLite, so only inside `writing()`
    read_sessions: sessionmaker[Session]  # everything else
    predictors: PredictorCache = field(default_factory=PredictorCache)
    tokens: TokenCache = field(default_factory=TokenCache)
    # Requests that run Python at once in this process, taken only once the body has arrived (api.app). Under
    # gevent an open stream or a slow client costs a greenlet, not a slot; letting every request compete at once
    # made GET /jobs/{id} 1.5-2x slower than 4 at a time (measured with threads).
    active: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(ACTIVE_REQUESTS))
    feed: Any = None  # api.events.Feed: what this process's event streams poll, shared
    celery: Any = None  # created on first publish or broker check
    metrics: Any = None  # the app's prometheus registry


def state() -> State:
    """The current app's State."""
    return current_app.extensions["trainyard"]


def session() -> Session:
    """This request's read-only database session (opened on first use, closed when the request ends).

    It never takes SQLite's write lock, so it may stay open while the response is built; writes go through
    `writing()`.
    """
    if "db" not in g:
        g.db = state().read_sessions()
    return g.db


@contextmanager
def writing() -> Iterator[Session]:
    """One short write transaction (SQLite's write lock is held only inside it): commit on success, roll back on
    an exception, always close. Afterwards the request's read session starts a fresh snapshot, so it sees the write.
    Objects it returns stay readable (expire_on_commit is off) but load nothing lazily."""
    with session_scope(state().sessions) as db:
        yield db
    if "db" in g:
        g.db.rollback()  # end the read transaction (SQLite keeps a snapshot from its first read)


def close_session(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def celery_app() -> Any:
    """The worker's Celery app for these settings, made on first use (building it opens no connection)."""
    st = state()
    if st.celery is None:
        from trainyard.worker.app import create_celery

        st.celery = create_celery(st.settings)
    return st.celery
