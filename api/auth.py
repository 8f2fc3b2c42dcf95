"""Bearer-token auth (tokens are looked up hashed, through the store), the token's scopes, and its rate limit."""

from __future__ import annotations

import logging

from flask import g, request

from trainyard.api import ratelimit, scopes
from trainyard.api.errors import ApiError
from trainyard.api.tokencache import TokenInfo
from trainyard.api.ui import sessions as ui_sessions
from trainyard.store.db import DATABASE_UNAVAILABLE, make_sessionmaker, no_wait, session_scope
from trainyard.store.models import utcnow
from trainyard.store.tokens import REVOKED, SCOPES, digest, find_token, get_or_create_user, token_state, touch_token

LOCAL_USER = "local"  # everyone, when TRAINYARD_AUTH is off
log = logging.getLogger(__name__)


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, detail, kind="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="trainyard"'})


def authenticate() -> None:
    """Set `g.user_id` and `g.scopes` from the request's bearer token (401 when it is missing, unknown, revoked
    or expired), count the request against the token's rate limit (429), then check the scope the route needs
    (403)."""
    from trainyard.api.context import state

    st = state()
    if not st.settings.auth:  # everyone is the local user: every scope, no per-token limit
        info = st.tokens.get(LOCAL_USER)
        if info is None:
            info = TokenInfo(token_id=LOCAL_USER, user_id=_local_user_id(), scopes=frozenset(SCOPES), expires_at=None)
            st.tokens.put(LOCAL_USER, info)
        g.user_id, g.scopes = info.user_id, info.scopes
        return
    info = _verified_token()
    g.user_id, g.scopes = info.user_id, info.scopes
    ratelimit.check(info.token_id)
    scopes.check(info.scopes)


def _verified_token() -> TokenInfo:
    header = request.headers.get("Authorization", "")
    if not header and ui_sessions.COOKIE in request.cookies:
        return _session_cookie()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("send 'Authorization: Bearer TOKEN' (trainyard token create --user NAME makes one)")
    if token.startswith(ui_sessions.CODE_PREFIX):
        raise _unauthorized("a dashboard sign-in code is not a token: open its link in a browser")
    return verify(token)


def _session_cookie() -> TokenInfo:
    """The dashboard's session cookie (api.ui.sessions) instead of a bearer token: a request that changes anything
    must also carry the session's CSRF token in the X-CSRF-Token header (403 without it)."""
    secret = request.cookies[ui_sessions.COOKIE]
    if request.method not in scopes.READ_METHODS and not ui_sessions.csrf_ok(
            secret, request.headers.get(ui_sessions.CSRF_HEADER)):
        raise ApiError(403, f"a request with the dashboard's session cookie that changes anything needs the session's "
                            f"CSRF token in the {ui_sessions.CSRF_HEADER} header", kind="csrf")
    return verify(secret)


def verify(token: str) -> TokenInfo:
    """The live token's (or dashboard session's) TokenInfo, cached; 401 when it is unknown, revoked or expired."""
    from trainyard.api.context import session, state

    st = state()
    key = digest(token)
    g.token = token  # an event stream re-checks it while open (api.results)
    info = st.tokens.get(key)
    if info is None:
        row = find_token(session=session(), token=token)
        if row is None:
            raise _unauthorized("the token is unknown")
        if token_state(row) == REVOKED:
            raise _unauthorized(f"the token was revoked at {_when(row.revoked_at)}")
        info = TokenInfo(token_id=row.id, user_id=row.user_id, scopes=frozenset(row.scopes.split()),
                         expires_at=row.expires_at)
        st.tokens.put(key, info)
    now = utcnow()
    if info.expires_at is not None and info.expires_at <= now:
        raise _unauthorized(f"the token expired at {_when(info.expires_at)}; ask for a new one "
                            f"(trainyard token create --user NAME --expires 30d)")
    if st.tokens.due_for_touch(info.token_id):
        _touch(info.token_id)
    return info


def _touch(token_id: str) -> None:
    """Record the token's use (at most once a minute per token and process; see api.tokencache). Bookkeeping:
    it never waits for SQLite's write lock (a long upload's write would stall every request behind it), and a
    database that cannot take the write now does not fail the request."""
    from trainyard.api.context import state

    try:
        with session_scope(make_sessionmaker(no_wait(state().engine))) as db:
            touch_token(session=db, token_id=token_id)
    except DATABASE_UNAVAILABLE as exc:
        log.warning("could not record the use of token %s: %s", token_id, type(exc).__name__)


def _when(value) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def _local_user_id() -> str:
    from trainyard.api.context import writing

    with writing() as db:
        return get_or_create_user(session=db, name=LOCAL_USER).id


def user_id() -> str:
    """The authenticated caller's user id."""
    return g.user_id
