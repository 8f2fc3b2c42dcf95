"""Users and API tokens: random, shown once, stored as SHA-256, named, scoped, expiring, revocable.

A token's scopes say what it may do (`SCOPES`; api.scopes maps routes to them): `read`
sees jobs, datasets and results; `write` also submits, cancels, deletes and uploads, and
includes `read`. A token whose `expires_at` has passed, or that was revoked, no longer
authenticates. `last_used_at` is written at most once a `TOUCH_SECONDS` per token.
The `trainyard token …` commands are in store.token_commands.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from trainyard.store.models import ApiToken, User, utcnow

TOKEN_PREFIX = "ty_"
READ, WRITE = "read", "write"
SCOPES = {READ: "see jobs, datasets, results and models; predict",
          WRITE: "also submit, cancel and delete jobs, upload and delete datasets (includes read)"}
IMPLIED = {WRITE: (READ,)}  # a scope → the scopes it includes
DEFAULT_SCOPES = (READ, WRITE)
TOUCH_SECONDS = 60  # last_used_at is written at most this often per token
LIVE, REVOKED, EXPIRED = "live", "revoked", "expired"


def digest(token: str) -> str:
    """The SHA-256 a token is stored (and looked up) as."""
    return hashlib.sha256(token.encode()).hexdigest()


_digest = digest  # the name earlier callers used


def normalise_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Known scopes, with what they imply, in SCOPES order; ValueError naming an unknown one and the valid ones."""
    given = {s.strip().lower() for s in scopes if s.strip()}
    unknown = sorted(given - SCOPES.keys())
    if unknown:
        raise ValueError(f"unknown scope{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                         f"valid scopes are {', '.join(SCOPES)}")
    if not given:
        raise ValueError(f"give at least one scope ({', '.join(SCOPES)})")
    for scope in list(given):
        given.update(IMPLIED.get(scope, ()))
    return tuple(s for s in SCOPES if s in given)


def token_state(row: ApiToken, now: datetime | None = None) -> str:
    """LIVE, REVOKED or EXPIRED."""
    if row.revoked_at is not None:
        return REVOKED
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return EXPIRED
    return LIVE


def get_or_create_user(*, session: Session, name: str) -> User:
    """The user called `name`, created if new."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name)
        session.add(user)
        session.flush()
    return user


def create_api_token(*, session: Session, user_name: str, name: str | None = None,
                     scopes: Iterable[str] = DEFAULT_SCOPES, expires_in: timedelta | None = None) -> tuple[str, ApiToken]:
    """A new token for `user_name` (created if new) and its row; the plain token exists only in the return value.

    Args:
        expires_in: how long it authenticates; None: until revoked.
    """
    user = get_or_create_user(session=session, name=user_name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(user_id=user.id, token_sha256=digest(token), name=name, scopes=" ".join(normalise_scopes(scopes)),
                   created_at=now, expires_at=None if expires_in is None else now + expires_in)
    session.add(row)
    session.flush()
    return token, row


def create_token(*, session: Session, user_name: str, name: str | None = None,
                 scopes: Iterable[str] = DEFAULT_SCOPES, expires_in: timedelta | None = None) -> tuple[str, User]:
    """A new token for `user_name` (the user is created if new); the plain token exists only in the return value."""
    token, row = create_api_token(session=session, user_name=user_name, name=name, scopes=scopes,
                                  expires_in=expires_in)
    return token, row.user


def find_token(*, session: Session, token: str) -> ApiToken | None:
    """The row of `token` whatever its state (live, revoked or expired), or None if unknown."""
    return session.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest(token)))


def verify_token(*, session: Session, token: str) -> User | None:
    """The user a live (not revoked, not expired) token belongs to, or None."""
    row = find_token(session=session, token=token)
    return row.user if row is not None and token_state(row) == LIVE else None


def touch_token(*, session: Session, token_id: str, now: datetime | None = None) -> bool:
    """Set the token's last_used_at to now unless it was set less than TOUCH_SECONDS ago (by any process);
    True if this wrote."""
    now = now or utcnow()
    query = (update(ApiToken).where(ApiToken.id == token_id)
             .where(or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - timedelta(seconds=TOUCH_SECONDS)))
             .values(last_used_at=now))
    return session.execute(query).rowcount == 1


def list_tokens(*, session: Session, user_name: str | None = None) -> list[ApiToken]:
    """Every token (or every token of `user_name`), by user name, then oldest first."""
    query = select(ApiToken).join(User, ApiToken.user_id == User.id).order_by(User.name, ApiToken.created_at,
                                                                               ApiToken.id)
    if user_name is not None:
        query = query.where(User.name == user_name)
    return list(session.scalars(query))


def describe_token(row: ApiToken, now: datetime | None = None) -> dict:
    """What `token list` shows of a token: never its secret or its hash."""
    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat().replace("+00:00", "Z")

    return {"id": row.id, "user": row.user.name, "name": row.name, "scopes": row.scopes.split(),
            "state": token_state(row, now), "created_at": when(row.created_at), "last_used_at": when(row.last_used_at),
            "expires_at": when(row.expires_at), "revoked_at": when(row.revoked_at)}


def revoke_tokens(*, session: Session, token: str | None = None, user_name: str | None = None,
                  token_id: str | None = None, name: str | None = None) -> int:
    """Revoke one token (by its secret or its id), the tokens of `user_name` called `name`, or every token of
    `user_name`; returns how many were live and are now revoked."""
    query = update(ApiToken).where(ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    if token is not None:
        query = query.where(ApiToken.token_sha256 == digest(token))
    elif token_id is not None:
        query = query.where(ApiToken.id == token_id)
    elif user_name is not None:
        query = query.where(ApiToken.user_id.in_(select(User.id).where(User.name == user_name)))
        if name is not None:
            query = query.where(ApiToken.name == name)
    else:
        raise ValueError("give a token, a token id or a user name")
    return session.execute(query).rowcount
