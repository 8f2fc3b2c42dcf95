"""Users and API tokens: tokens are random, shown once, stored as SHA-256, revocable; plus the `token` commands."""

from __future__ import annotations

import hashlib
import secrets
import sys

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.models import ApiToken, User, utcnow

TOKEN_PREFIX = "ty_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_or_create_user(*, session: Session, name: str) -> User:
    """The user called `name`, created if new."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name)
        session.add(user)
        session.flush()
    return user


def create_token(*, session: Session, user_name: str) -> tuple[str, User]:
    """A new token for `user_name` (the user is created if new); the plain token exists only in the return value."""
    user = get_or_create_user(session=session, name=user_name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_sha256=_digest(token)))
    session.flush()
    return token, user


def verify_token(*, session: Session, token: str) -> User | None:
    """The user a live (not revoked) token belongs to, or None."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _digest(token),
                                                ApiToken.revoked_at.is_(None)))
    return None if row is None else row.user


def revoke_tokens(*, session: Session, token: str | None = None, user_name: str | None = None) -> int:
    """Revoke one token, or every token of `user_name`; returns how many were live and are now revoked."""
    query = update(ApiToken).where(ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    if token is not None:
        query = query.where(ApiToken.token_sha256 == _digest(token))
    elif user_name is not None:
        query = query.where(ApiToken.user_id.in_(select(User.id).where(User.name == user_name)))
    else:
        raise ValueError("give a token or a user name")
    return session.execute(query).rowcount


def _session_factory():
    from store.db import make_engine, make_sessionmaker
    from store.migrate import upgrade
    from store.settings import load_settings

    settings = load_settings()
    upgrade(settings)
    return make_sessionmaker(make_engine(settings))


def create_token_cli(user: str) -> int:
    """`trainyard token create --user NAME`: print a new token on the last line of stdout."""
    from store.db import session_scope

    with session_scope(_session_factory()) as session:
        token, _ = create_token(session=session, user_name=user)
    print(f"token for user {user!r} (shown once; keep it secret):")
    print(token)
    return 0


def revoke_token_cli(token: str | None, user: str | None) -> int:
    """`trainyard token revoke [TOKEN | --user NAME]`: 0 if something was revoked, 1 if nothing matched, 2 on bad usage."""
    from store.db import session_scope

    if (token is None) == (user is None):
        print("give exactly one of a token or --user", file=sys.stderr)
        return 2
    with session_scope(_session_factory()) as session:
        count = revoke_tokens(session=session, token=token, user_name=user)
    print(f"revoked {count} token{'s' if count != 1 else ''}")
    return 0 if count else 1
