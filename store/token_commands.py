"""`trainyard token create | list | revoke`: run where the database is (no API needed); `--json` on each.

Each prints for people by default and, with `--json`, one JSON object as the last line of
stdout (`create` also for people prints the token itself on its last line). Exit codes:
0 done, 1 nothing matched (revoke), 2 bad usage (an unknown scope, a bad duration).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainyard.store.durations import parse_duration
from trainyard.store.tokens import create_api_token, describe_token, list_tokens, revoke_tokens


class NoDatabase(Exception):
    """The configured database does not exist (yet): a token there would not reach the running service."""


def describe_database(settings) -> str:
    """The configured database for people: its URL without a password, and where an SQLite default comes from."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url).render_as_string(hide_password=True)
    if settings.is_sqlite and not os.environ.get("TRAINYARD_DATABASE_URL"):
        home = "TRAINYARD_HOME" if os.environ.get("TRAINYARD_HOME") else "TRAINYARD_HOME, default ./var"
        return f"{url} ({home}: {settings.home})"
    return url


def database_exists(settings) -> bool:
    """Whether the configured database holds trainyard's schema (an SQLite file is never created by asking)."""
    from sqlalchemy import inspect

    from trainyard.store.db import make_engine

    if settings.is_sqlite:
        from sqlalchemy.engine import make_url

        name = make_url(settings.database_url).database
        if name and name != ":memory:" and not Path(name).is_file():
            return False
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            return inspect(connection).has_table("alembic_version")
    finally:
        engine.dispose()


def _engine(create_database: bool = False):
    from trainyard.store.db import make_engine
    from trainyard.store.migrate import upgrade
    from trainyard.store.settings import load_settings

    settings = load_settings()
    if not create_database and not database_exists(settings):
        raise NoDatabase(
            f"no trainyard database at {describe_database(settings)}. Run this where the service runs (the "
            "repository root for `make run`), or point TRAINYARD_HOME or TRAINYARD_DATABASE_URL at the service's "
            "database; `trainyard token create --create-database` creates a new, empty one there")
    upgrade(settings)
    return make_engine(settings)


def _usage(message: str, as_json: bool) -> int:
    print(f"trainyard token: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": {"status": 0, "title": "bad usage", "detail": message}}))
    return 2


def _in_session(work: Callable[[Any], Any], create_database: bool = False) -> Any:
    """`work(session)` in one transaction on the configured database (NoDatabase if it does not exist)."""
    from trainyard.store.db import make_sessionmaker, session_scope

    engine = _engine(create_database)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            return work(session)
    finally:
        engine.dispose()


def create_token_cli(user: str, *, name: str | None = None, scopes: str | None = None, expires: str | None = None,
                     as_json: bool = False, create_database: bool = False) -> int:
    """`trainyard token create --user NAME [--name N] [--scopes read,write] [--expires 30d|never] [--json]
    [--create-database]`: the token goes into the configured database, which must exist unless asked to create it."""
    from trainyard.store.settings import load_settings
    from trainyard.store.tokens import normalise_scopes

    scope_list = [s for s in (scopes or "read,write").replace(" ", ",").split(",") if s]
    try:
        normalise_scopes(scope_list)
    except ValueError as exc:
        return _usage(f"--scopes: {exc}", as_json)
    try:
        expires_in = parse_duration(expires if expires is not None else load_settings().token_default_expiry)
    except ValueError as exc:
        return _usage(f"--expires: {exc}", as_json)

    def work(session):
        token, row = create_api_token(session=session, user_name=user, name=name, scopes=scope_list,
                                      expires_in=expires_in)
        return token, describe_token(row)

    try:
        token, info = _in_session(work, create_database)
    except NoDatabase as exc:
        return _usage(str(exc), as_json)
    database = describe_database(load_settings())
    if as_json:
        print(json.dumps({**info, "token": token, "database": database}))
        return 0
    until = f"until {info['expires_at']}" if info["expires_at"] else "until revoked (never expires)"
    print(f"token {info['id']} for user {user!r}{f' ({name})' if name else ''}: scopes {' '.join(info['scopes'])}, "
          f"valid {until}")
    print(f"in database {database}")
    print("shown once; keep it secret:")
    print(token)
    return 0


COLUMNS = (("ID", "id"), ("USER", "user"), ("NAME", "name"), ("SCOPES", "scopes"), ("STATE", "state"),
           ("CREATED", "created_at"), ("LAST USED", "last_used_at"), ("EXPIRES", "expires_at"))


def _cell(key: str, value: Any) -> str:
    if value is None:
        return {"expires_at": "never", "last_used_at": "never", "name": "-"}.get(key, "-")
    if isinstance(value, list):
        return ",".join(value)
    if key.endswith("_at"):
        return value[:16].replace("T", " ") + "Z"  # to the minute: last_used_at is kept to the minute anyway
    return str(value)


def list_tokens_cli(user: str | None = None, *, as_json: bool = False) -> int:
    """`trainyard token list [--user NAME] [--json]`: every token's id, user, name, scopes, state, times."""
    try:
        tokens = _in_session(lambda session: [describe_token(t) for t in list_tokens(session=session,
                                                                                    user_name=user)])
    except NoDatabase as exc:
        return _usage(str(exc), as_json)
    if as_json:
        print(json.dumps({"tokens": tokens}))
        return 0
    if not tokens:
        print(f"no tokens{f' for user {user!r}' if user else ''}")
        return 0
    rows = [[h for h, _ in COLUMNS]] + [[_cell(k, t[k]) for _, k in COLUMNS] for t in tokens]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def revoke_token_cli(token: str | None, user: str | None, *, token_id: str | None = None, name: str | None = None,
                     as_json: bool = False) -> int:
    """`trainyard token revoke [TOKEN | --id ID | --user NAME [--name N]] [--json]`: 0 if something was revoked,
    1 if nothing matched, 2 on bad usage."""
    if sum(x is not None for x in (token, token_id, user)) != 1:
        return _usage("give exactly one of a token, --id ID or --user NAME", as_json)
    if name is not None and user is None:
        return _usage("--name needs --user (token names are per user)", as_json)
    try:
        count = _in_session(lambda session: revoke_tokens(session=session, token=token, user_name=user,
                                                          token_id=token_id, name=name))
    except NoDatabase as exc:
        return _usage(str(exc), as_json)
    if as_json:
        print(json.dumps({"revoked": count}))
    else:
        print(f"revoked {count} token{'s' if count != 1 else ''}")
    return 0 if count else 1
