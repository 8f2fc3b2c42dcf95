"""What the routes share: the per-app State (settings, engine, caches) and the per-request database session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.predicting import PredictorCache
from api.ratelimit import RateLimiter
from store.settings import Settings


@dataclass
class State:
    """One per app (so tests can run several apps in one process)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    limiter: RateLimiter
    predictors: PredictorCache = field(default_factory=PredictorCache)
    celery: Any = None  # created on first publish or broker check
    metrics: Any = None  # the app's prometheus registry


def state() -> State:
    """The current app's State."""
    return current_app.extensions["trainyard"]


def session() -> Session:
    """This request's database session (opened on first use, closed when the request ends)."""
    if "db" not in g:
        g.db = state().sessions()
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
