"""`create_app(settings)`: the Flask app with every blueprint under /api/v1, auth, limits and problem+json errors."""

from __future__ import annotations

from flask import Flask, g, request
from sqlalchemy import Engine

from trainyard.api import (auth, catalog, datasets, docs, headers, health, jobs, metrics, params, ratelimit, results,
                           throttle, workers)
from trainyard.api.bodies import read_body
from trainyard.api.events import Feed
from trainyard.api import pins
from trainyard.api import sweeps
from trainyard.api import boundary
from trainyard.api.ui import pages as ui_pages
from trainyard.api.context import State, close_session, read_sessionmaker, state
from trainyard.api.errors import register_error_handlers
from trainyard.api.jsonio import FiniteJSONProvider
from trainyard.api.urls import PREFIX, UPLOAD_ENDPOINTS
from trainyard.store.db import make_engine, make_sessionmaker
from trainyard.store.settings import Settings

# Endpoints that need no token (DESIGN §6): health, the OpenAPI document and its page, metrics (own setting).
PUBLIC = {"health.get_health", "docs.get_openapi", "docs.get_docs", "docs.get_home", "metrics.get_metrics"}


def _before_request() -> None:
    """Per request, in this order: the body limit; the client throttle and the token (no body read yet, so an
    unauthenticated upload costs nothing); the whole body, within body_timeout_seconds; then a concurrency slot —
    so a slow client holds a greenlet and a socket, never a slot or a database transaction."""
    st = state()
    s = st.settings
    # Uploads may be up to max_upload_bytes; every other body is held to max_request_bytes.
    request.max_content_length = s.max_upload_bytes if request.endpoint in UPLOAD_ENDPOINTS else s.max_request_bytes
    if request.endpoint is None:
        return
    if request.endpoint in PUBLIC:
        return  # no body, no token, no slot: /health answers even when every slot is taken
    if request.blueprint == ui_pages.bp.name:
        return  # the dashboard's pages authenticate with its session cookie (api.ui.pages)
    throttle.check_client()  # before any database access
    auth.authenticate()
    close_session()  # don't keep a connection (or SQLite snapshot) while the body arrives
    read_body(s.body_timeout_seconds)
    st.active.acquire()
    g.active = True


def _after_request_teardown(_exc: BaseException | None) -> None:
    if g.pop("active", False):
        state().active.release()


def create_app(settings: Settings, *, engine: Engine | None = None) -> Flask:
    """Build the API app for `settings` (tests may pass an engine to share)."""
    app = Flask(__name__, static_folder=None)  # no /static/<path:filename>: no route serves files by a client path
    app.json = FiniteJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = max(settings.max_upload_bytes, settings.max_request_bytes)
    engine = engine or make_engine(settings)
    read_sessions = read_sessionmaker(engine)
    app.extensions["trainyard"] = State(
        settings=settings, engine=engine, sessions=make_sessionmaker(engine), read_sessions=read_sessions,
        feed=Feed(read_sessions),
    )
    register_error_handlers(app)
    app.before_request(_before_request)
    app.teardown_request(_after_request_teardown)
    app.teardown_appcontext(close_session)
    for module in (jobs, results, datasets, catalog, workers, health, metrics, docs):
        app.register_blueprint(module.bp, url_prefix=PREFIX)
    app.register_blueprint(pins.bp, url_prefix=PREFIX)  # retention (issue 14 item 4)
    app.register_blueprint(sweeps.bp, url_prefix=PREFIX)  # hyperparameter sweeps (issue 9)
    app.register_blueprint(boundary.bp, url_prefix=PREFIX)  # the dashboard's decision boundary (issue 10)
    app.register_blueprint(ui_pages.bp)  # the dashboard at / and /ui/… (issue 10)
    metrics.install(app)
    throttle.install(app)
    ratelimit.install(app)
    headers.install(app)
    params.install(app)
    return app
