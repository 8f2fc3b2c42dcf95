"""Dashboard sessions and one-time sign-in codes, kept as rows of `api_tokens` (so they expire, are revoked and are
scoped exactly as tokens are, and the API's token cache, rate limit and scope checks apply to them unchanged).

- A **session** is a fresh random secret (`tys_…`) made when someone signs in with a token (or a sign-in code); only
  its SHA-256 is stored, under the name SESSION_NAME, with the scopes of what signed in and an expiry of
  SESSION_HOURS. The browser holds it in an HttpOnly, SameSite=Strict cookie; the token that signed in is never
  stored in the browser. Signing out revokes the row.
- The **CSRF token** of a session is derived from its secret (SHA-256 with a label), so only a page that the server
  rendered for that session knows it; every state-changing form and API call from the dashboard must carry it.
- A **sign-in code** (`tyc_…`, what `trainyard up` prints in a link) signs one browser in once, within
  CODE_MINUTES; it is not a token: the API refuses it as a bearer token (api.auth).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from trainyard.store.models import ApiToken, utcnow
from trainyard.store.tokens import LIVE, digest, find_token, get_or_create_user, token_state

COOKIE = "trainyard_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
SESSION_PREFIX, CODE_PREFIX = "tys_", "tyc_"
SESSION_NAME, CODE_NAME = "dashboard session", "dashboard sign-in code"
SESSION_HOURS = 12
CODE_MINUTES = 15
KEEP_ENDED = timedelta(days=7)  # an ended session or code row is kept this long (`trainyard token list` shows it)


def csrf_token(session_secret: str) -> str:
    """The CSRF token of the session whose cookie holds `session_secret`."""
    return hashlib.sha256(b"trainyard-csrf\0" + session_secret.encode()).hexdigest()


def csrf_ok(session_secret: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(session_secret), given)


def _new_row(db: Session, *, prefix: str, name: str, user_id: str, scopes: str, lifetime: timedelta) -> str:
    secret = prefix + secrets.token_urlsafe(32)
    now = utcnow()
    db.add(ApiToken(user_id=user_id, token_sha256=digest(secret), name=name, scopes=scopes, created_at=now,
                    expires_at=now + lifetime))
    db.flush()
    return secret


def start_session(db: Session, *, user_id: str, scopes: str) -> str:
    """A new session's secret (for the cookie) for `user_id` with `scopes`; the user's sessions and codes that ended
    more than KEEP_ENDED ago are deleted (so signing in keeps their rows few)."""
    cutoff = utcnow() - KEEP_ENDED
    db.execute(delete(ApiToken).where(ApiToken.user_id == user_id, ApiToken.name.in_((SESSION_NAME, CODE_NAME)),
                                      or_(ApiToken.revoked_at < cutoff, ApiToken.expires_at < cutoff)))
    return _new_row(db, prefix=SESSION_PREFIX, name=SESSION_NAME, user_id=user_id, scopes=scopes,
                    lifetime=timedelta(hours=SESSION_HOURS))


def sign_in_with_token(db: Session, token: str) -> str | None:
    """A session for the live token `token` (same user and scopes), or None when it is unknown, revoked, expired, or
    a sign-in code (codes go through `redeem_code`)."""
    token = token.strip()
    if not token or token.startswith(CODE_PREFIX):
        return None
    row = find_token(session=db, token=token)
    if row is None or token_state(row) != LIVE or row.name == CODE_NAME:
        return None
    return start_session(db, user_id=row.user_id, scopes=row.scopes)


def create_code(db: Session, *, user_name: str, scopes: str = "read write") -> str:
    """A one-time sign-in code for `user_name` (created if new), valid for CODE_MINUTES."""
    user = get_or_create_user(session=db, name=user_name)
    return _new_row(db, prefix=CODE_PREFIX, name=CODE_NAME, user_id=user.id, scopes=scopes,
                    lifetime=timedelta(minutes=CODE_MINUTES))


def redeem_code(db: Session, code: str) -> str | None:
    """A session for the live sign-in code `code`, which is used up (revoked) by this call; None when it is unknown,
    used or expired. Two browsers racing with one code: exactly one wins (a conditional UPDATE)."""
    code = code.strip()
    if not code.startswith(CODE_PREFIX):
        return None
    now = utcnow()
    used = db.execute(update(ApiToken).where(ApiToken.token_sha256 == digest(code), ApiToken.name == CODE_NAME,
                                             ApiToken.revoked_at.is_(None), ApiToken.expires_at > now)
                      .values(revoked_at=now))
    if used.rowcount != 1:
        return None
    row = db.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest(code)))
    return start_session(db, user_id=row.user_id, scopes=row.scopes)


def end_session(db: Session, session_secret: str) -> bool:
    """Revoke the session (sign-out); True if it was live."""
    query = (update(ApiToken).where(ApiToken.token_sha256 == digest(session_secret), ApiToken.name == SESSION_NAME,
                                    ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
    return db.execute(query).rowcount == 1


def sign_in_link(settings, base_url: str) -> str:
    """A one-time dashboard link (`trainyard up` prints it) for the user of the token in settings.token_file,
    with that token's scopes; the token itself is not in it."""
    from trainyard.store.db import make_engine, make_sessionmaker, session_scope

    token = settings.token_file.read_text().strip()
    engine = make_engine(settings)
    try:
        with session_scope(make_sessionmaker(engine)) as db:
            row = find_token(session=db, token=token)
            if row is None or token_state(row) != LIVE:
                raise ValueError(f"the token in {settings.token_file} does not authenticate")
            code = create_code(db, user_name=row.user.name, scopes=row.scopes)
    finally:
        engine.dispose()
    return f"{base_url}/ui/signin?code={code}"
