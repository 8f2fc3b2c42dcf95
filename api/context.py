"""What the routes share: the per-app State (settings, engine, caches) and the per-request database session."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.predicting import PredictorCache
from api.ratelimit import RateLimiter, TokenCache
from store.db import make_sessionmaker
from store.settings import Settings


READ_METHODS = ("GET", "HEAD")
ACTIVE_REQUESTS = 4


def read_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions for requests that only read. On PostgreSQL each statement runs in autocommit (a read needs no
    transaction, and skipping BEGIN/ROLLBACK halves a small request's round trips); SQLite keeps the store's
    BEGIN IMMEDIATE transactions, which its locking relies on."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return make_sessionmaker(engine)


@dataclass
class State:
    """One per app (so tests can run several apps in one process)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]  # autocommit on PostgreSQL: no BEGIN/ROLLBACK round trips for reads
    limiter: RateLimiter
    predictors: PredictorCache = field(default_factory=PredictorCache)
    tokens: TokenCache = field(default_factory=TokenCache)
    # Requests that run Python at once in this process. gunicorn gives each worker many threads so
    # that open event streams (which sleep between polls, outside this limit) don't block it; letting
    # all of them compete for the GIL at once made GET /jobs/{id} 1.5-2x slower than 4 at a time.
    active: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(ACTIVE_REQUESTS))
    celery: Any = None  # created on first publish or broker check
    metrics: Any = None  # the app's prometheus registry


def state() -> State:
    """The current app's State."""
    return current_app.extensions["trainyard"]


def session() -> Session:
    """This request's database session (opened on first use, closed when the request ends)."""
    if "db" not in g:
        st = state()
        g.db = st.read_sessions() if request.method in READ_METHODS else st.sessions()
    return g.db


def close_session(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def celery_app() -> Any:
    """The worker's Celery app for these settings, made on first use (building it opens no connection)."""
    st = state()
    if st.celery is None:
        from worker.app import create_celery

        st.celery = create_celery(st.settings)
    return st.celery
