"""Issue 14 item 3 in the store and the `trainyard token` commands: expiry, scopes, list, revoke, --json — on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.durations import parse_duration
from trainyard.store.migrate import upgrade
from trainyard.store.settings import SettingsError, load_settings
from trainyard.store.token_commands import create_token_cli, list_tokens_cli, revoke_token_cli
from trainyard.store.tokens import create_api_token, digest, normalise_scopes, touch_token, verify_token


@pytest.fixture
def cli(migrated_settings, monkeypatch, capsys):
    """`cli(function, *args, **kw)` → (exit code, stdout lines, stderr), with the test's (migrated) database."""
    for key in [k for k in __import__("os").environ if k.startswith("TRAINYARD_")]:
        monkeypatch.delenv(key)
    for key, value in migrated_settings.to_env().items():
        monkeypatch.setenv(key, value)

    def run(function, *args, **kw):
        code = function(*args, **kw)
        captured = capsys.readouterr()
        return code, captured.out.splitlines(), captured.err
    return run


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_durations_and_scopes_are_parsed_or_refused_clearly():
    assert [parse_duration(t) for t in ("30d", "12h", "90m", "45s", "2w", "never", " 1D ")] == [
        timedelta(days=30), timedelta(hours=12), timedelta(minutes=90), timedelta(seconds=45), timedelta(weeks=2),
        None, timedelta(days=1)]
    for bad in ("30", "d", "-1d", "0d", "1.5d", "1y", "", "36501d"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert normalise_scopes(["write"]) == normalise_scopes(["read", "write"]) == ("read", "write")
    assert normalise_scopes(["READ"]) == ("read",)
    with pytest.raises(ValueError, match="unknown scope 'admin': valid scopes are read, write"):
        normalise_scopes(["read", "admin"])
    with pytest.raises(ValueError, match="at least one scope"):
        normalise_scopes([])
    assert load_settings({}).token_default_expiry == "90d"
    with pytest.raises(SettingsError, match="TRAINYARD_TOKEN_DEFAULT_EXPIRY"):
        load_settings({"TRAINYARD_TOKEN_DEFAULT_EXPIRY": "soon"})


def test_create_list_and_revoke_with_json(cli):
    code, out, _ = cli(create_token_cli, "carol", name="ci", scopes="read", expires="30d", as_json=True)
    created = json.loads(out[-1])
    assert code == 0 and created["token"].startswith("ty_")
    assert (created["user"], created["name"], created["scopes"], created["state"], created["last_used_at"]) == (
        "carol", "ci", ["read"], "live", None)
    assert at(created["expires_at"]) - at(created["created_at"]) == timedelta(days=30)

    code, out, _ = cli(create_token_cli, "carol", expires="never")  # for people: the token on the last line
    assert code == 0 and out[-1].startswith("ty_") and "never expires" in out[0] and "read write" in out[0]
    forever = out[-1]
    code, out, _ = cli(create_token_cli, "dave", as_json=True)  # the default expiry setting: 90d
    dave = json.loads(out[-1])
    assert at(dave["expires_at"]) - at(dave["created_at"]) == timedelta(days=90)

    code, out, _ = cli(list_tokens_cli, as_json=True)
    listed = json.loads(out[-1])["tokens"]
    assert [(t["user"], t["name"], t["scopes"], t["expires_at"] is None) for t in listed] == [
        ("carol", "ci", ["read"], False), ("carol", None, ["read", "write"], True),
        ("dave", None, ["read", "write"], False)]
    text = "\n".join(out)
    for secret in (created["token"], forever, dave["token"]):
        assert secret not in text and digest(secret) not in text  # never the token nor its hash
    assert set(listed[0]) == {"id", "user", "name", "scopes", "state", "created_at", "last_used_at", "expires_at",
                              "revoked_at"}

    code, out, _ = cli(list_tokens_cli, "carol")  # the table, for people
    assert code == 0 and out[0].split() == ["ID", "USER", "NAME", "SCOPES", "STATE", "CREATED", "LAST", "USED",
                                            "EXPIRES"]
    assert len(out) == 3 and "read " in out[1] and "never" in out[2]

    code, out, _ = cli(revoke_token_cli, None, None, token_id=created["id"], as_json=True)
    assert (code, json.loads(out[-1])) == (0, {"revoked": 1})
    code, out, _ = cli(revoke_token_cli, None, "carol", name="ci", as_json=True)  # already revoked
    assert (code, json.loads(out[-1])) == (1, {"revoked": 0})
    code, out, _ = cli(list_tokens_cli, "carol", as_json=True)
    states = [(t["name"], t["state"], t["revoked_at"] is not None) for t in json.loads(out[-1])["tokens"]]
    assert states == [("ci", "revoked", True), (None, "live", False)]


def test_bad_usage_is_exit_2_with_a_json_error(cli):
    code, out, err = cli(create_token_cli, "carol", scopes="read,admin", as_json=True)
    assert code == 2 and "--scopes: unknown scope 'admin': valid scopes are read, write" in err
    assert json.loads(out[-1])["error"]["detail"].startswith("--scopes")
    code, out, err = cli(create_token_cli, "carol", expires="tomorrow", as_json=True)
    assert code == 2 and "--expires" in err and "e.g. 30d" in err
    code, out, err = cli(revoke_token_cli, None, None, as_json=True)
    assert code == 2 and json.loads(out[-1])["error"]["title"] == "bad usage"
    code, _, err = cli(revoke_token_cli, None, None, name="ci")
    assert code == 2
    code, out, _ = cli(list_tokens_cli, as_json=True)
    assert json.loads(out[-1]) == {"tokens": []}  # nothing was created


def test_expired_tokens_do_not_verify_and_touch_is_conditional(db_settings):
    upgrade(db_settings)
    engine = make_engine(db_settings)
    try:
        sessions = make_sessionmaker(engine)
        with session_scope(sessions) as s:
            live, row = create_api_token(session=s, user_name="erin", expires_in=timedelta(days=1))
            token_id = row.id
            gone, gone_row = create_api_token(session=s, user_name="erin", expires_in=timedelta(days=1))
            gone_row.expires_at = gone_row.created_at - timedelta(seconds=1)
        with session_scope(sessions) as s:
            assert verify_token(session=s, token=live).name == "erin"
            assert verify_token(session=s, token=gone) is None
            now = datetime.now().astimezone()
            assert touch_token(session=s, token_id=token_id, now=now) is True
            assert touch_token(session=s, token_id=token_id, now=now + timedelta(seconds=59)) is False
            assert touch_token(session=s, token_id=token_id, now=now + timedelta(seconds=61)) is True
    finally:
        engine.dispose()


def test_token_create_says_which_database_and_refuses_one_that_does_not_exist(tmp_path, monkeypatch, capsys):
    """In another folder, `token create` used to make a new ./var/trainyard.db silently: a token the service never
    sees. It names the database, refuses a missing one, and creates one only with --create-database."""
    for key in [k for k in __import__("os").environ if k.startswith("TRAINYARD_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "var" / "trainyard.db"
    for command in (lambda: create_token_cli("bob"), lambda: list_tokens_cli(),
                    lambda: revoke_token_cli(None, "bob"), lambda: create_token_cli("bob", as_json=True)):
        assert command() == 2
        captured = capsys.readouterr()
        assert f"no trainyard database at sqlite:///{database} (TRAINYARD_HOME, default ./var: {tmp_path / 'var'})" \
            in captured.err
        assert "--create-database" in captured.err and not database.exists()
    assert json.loads(captured.out.splitlines()[-1])["error"]["detail"].startswith("no trainyard database at")
    assert create_token_cli("bob", create_database=True) == 0
    out = capsys.readouterr().out.splitlines()
    assert database.is_file() and out[-1].startswith("ty_")
    assert out[1] == f"in database sqlite:///{database} (TRAINYARD_HOME, default ./var: {tmp_path / 'var'})"
    assert create_token_cli("bob", as_json=True) == 0  # now it exists: no flag needed
    assert json.loads(capsys.readouterr().out)["database"].startswith(f"sqlite:///{database}")


def test_token_create_refuses_an_unmigrated_postgresql_database_and_hides_its_password(postgres_settings,
                                                                                      monkeypatch, capsys):
    from trainyard.store.token_commands import describe_database

    for key in [k for k in __import__("os").environ if k.startswith("TRAINYARD_")]:
        monkeypatch.delenv(key)
    for key, value in postgres_settings.to_env().items():
        monkeypatch.setenv(key, value)
    assert create_token_cli("bob") == 2  # the database is there, but without trainyard's tables
    assert f"no trainyard database at {postgres_settings.database_url}" in capsys.readouterr().err
    assert create_token_cli("bob", create_database=True) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"in database {postgres_settings.database_url}"
    url = postgres_settings.database_url.replace("postgres@", "postgres:s3cret@", 1)
    described = describe_database(postgres_settings.replace(database_url=url))
    assert "s3cret" not in described and "***" in described
