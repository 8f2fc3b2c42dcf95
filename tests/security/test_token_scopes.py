"""Issue 14 item 3 over HTTP: a token's scopes (403 naming the missing one), its expiry (401 saying it expired),
and `last_used_at` written at most once a minute per token — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from trainyard.api.app import create_app
from trainyard.api.scopes import route_scopes
from trainyard.store.db import session_scope
from trainyard.store.models import ApiToken, Job, utcnow
from trainyard.store.tokens import create_api_token

from tests.support import fakeworker as fake_worker
from tests.support.api import XOR_FIT, XOR_INPUTS, Caller, make_api, problem, xor
from tests.support.processes import wait_for


@pytest.fixture
def api(db_settings):
    a = make_api(db_settings)
    yield a
    a.engine.dispose()


def token_for(api, user: str, **kw) -> tuple[str, str]:
    """(token, token id) for `user` (created if new) with `create_api_token`'s keywords."""
    with session_scope(api.sessions) as s:
        token, row = create_api_token(session=s, user_name=user, **kw)
        return token, row.id


def jobs_of(api) -> int:
    with session_scope(api.sessions) as s:
        return len(s.scalars(select(Job.id)).all())


CSV = ("a,b,y\n" + "".join(f"{i % 2},{i % 3},{i % 2}\n" for i in range(20))).encode()


def upload(caller):
    return caller.post("/datasets", content_type="multipart/form-data",
                       data={"name": "d", "format": "csv", "target": "y", "file": (io.BytesIO(CSV), "d.csv")})


def assert_needs_write(r) -> None:
    body = problem(r, 403)
    assert body["type"] == "urn:trainyard:problem:insufficient-scope"
    assert (body["required_scope"], body["token_scopes"]) == ("write", ["read"])
    assert "lacks the 'write' scope" in body["detail"] and "--scopes write" in body["detail"]
    assert 'error="insufficient_scope", scope="write"' in r.headers["WWW-Authenticate"]


def test_a_read_token_sees_everything_and_changes_nothing(api):
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    dataset = upload(api.alice).get_json()
    token, _ = token_for(api, "alice", name="dashboard", scopes=["read"])
    reader = Caller(api.client, token, api.alice.user_id)

    assert [j["id"] for j in reader.get("/jobs").get_json()["items"]] == [job["id"]]
    assert reader.get(f"/jobs/{job['id']}").get_json()["status"] == "succeeded"
    assert reader.get(f"/jobs/{job['id']}/history").status_code == 200
    assert reader.get(f"/jobs/{job['id']}/model").status_code == 200
    assert reader.get(f"/datasets/{dataset['id']}").get_json()["name"] == "d"
    predicted = reader.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS})  # computes, stores nothing
    assert predicted.get_json()["predictions"] == [0, 1, 1, 0]

    before = jobs_of(api)
    assert_needs_write(reader.post("/jobs", json=xor()))
    assert_needs_write(reader.post(f"/jobs/{job['id']}/cancel"))
    assert_needs_write(reader.delete(f"/jobs/{job['id']}"))
    assert_needs_write(upload(reader))
    assert_needs_write(reader.delete(f"/datasets/{dataset['id']}"))
    assert jobs_of(api) == before
    assert api.alice.get(f"/jobs/{job['id']}").status_code == 200  # nothing was deleted
    assert api.alice.get(f"/datasets/{dataset['id']}").status_code == 200
    assert api.alice.post("/jobs", json=xor()).status_code == 201  # the read-write token still writes


def test_the_registry_gives_every_route_a_scope_and_only_reads_to_read_tokens(api):
    table = route_scopes(api.app)
    assert table[("GET", "/api/v1/jobs")] == table[("GET", "/api/v1/jobs/<job_id>/model")] == "read"
    assert table[("POST", "/api/v1/jobs/<job_id>/predict")] == "read"
    for key in [("POST", "/api/v1/jobs"), ("POST", "/api/v1/jobs/<job_id>/cancel"), ("DELETE", "/api/v1/jobs/<job_id>"),
                ("POST", "/api/v1/datasets"), ("DELETE", "/api/v1/datasets/<dataset_id>")]:
        assert table[key] == "write", key
    # Any route that is not a plain read needs write — also those added later (sweeps, pins…), by default.
    assert {scope for (method, rule), scope in table.items()
            if method != "GET" and not rule.endswith("/predict")} == {"write"}
    assert {scope for (method, _), scope in table.items() if method == "GET"} == {"read"}


def test_an_expired_token_is_401_saying_so_also_once_it_was_cached(api):
    token, token_id = token_for(api, "alice", expires_in=timedelta(days=1))
    caller = Caller(api.client, token, api.alice.user_id)
    assert caller.get("/jobs").status_code == 200  # verified and cached by this process
    with session_scope(api.sessions) as s:
        s.execute(update(ApiToken).where(ApiToken.id == token_id).values(expires_at=utcnow() - timedelta(seconds=1)))
    fresh = create_app(api.settings, engine=api.engine).test_client()  # another API process: nothing cached
    r = fresh.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
    assert problem(r, 401)["detail"].startswith("the token expired at ")
    assert "trainyard token create" in problem(r, 401)["detail"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")

    # The cache keeps the expiry it read, and checks it on every request.
    short, _ = token_for(api, "alice", expires_in=timedelta(seconds=3))
    short_caller = Caller(api.client, short, api.alice.user_id)
    assert short_caller.get("/jobs").status_code == 200
    time.sleep(3)
    wait_for(lambda: short_caller.get("/jobs").status_code == 401, 10, "the token to expire")
    assert problem(short_caller.get("/jobs"), 401)["detail"].startswith("the token expired at ")


def test_never_expiring_and_revoked_tokens(api):
    token, token_id = token_for(api, "carol", expires_in=None)
    caller = Caller(api.client, token, "")
    assert caller.get("/jobs").status_code == 200
    with session_scope(api.sessions) as s:
        s.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))
    fresh = create_app(api.settings, engine=api.engine).test_client()
    r = fresh.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
    assert problem(r, 401)["detail"].startswith("the token was revoked at ")


def test_last_used_at_is_written_once_a_minute_per_token_not_per_request(api):
    token, token_id = token_for(api, "alice")
    caller = Caller(api.client, token, api.alice.user_id)
    writes = []

    @event.listens_for(api.engine, "before_cursor_execute")
    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    def last_used():
        with session_scope(api.sessions) as s:
            return s.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))

    assert last_used() is None
    started = utcnow()
    for _ in range(30):
        assert caller.get("/jobs").status_code == 200
    first = last_used()
    assert first is not None and started <= first <= utcnow()
    assert len(writes) == 1  # 30 requests, one write
    # A second API process writes once too, but its conditional update changes nothing within the minute.
    other = Caller(create_app(api.settings, engine=api.engine).test_client(), token, api.alice.user_id)
    for _ in range(10):
        assert other.get("/jobs").status_code == 200
    assert len(writes) == 2 and last_used() == first
    # A minute later (as the row says), the next process to touch it moves it on.
    with session_scope(api.sessions) as s:
        s.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=first - timedelta(minutes=2)))
    third = Caller(create_app(api.settings, engine=api.engine).test_client(), token, api.alice.user_id)
    assert third.get("/jobs").status_code == 200
    assert last_used() > first
    event.remove(api.engine, "before_cursor_execute", count)


def test_the_openapi_document_lists_403_where_write_is_needed():
    from trainyard.api.openapi import openapi_document

    paths = openapi_document()["paths"]
    assert "403" in paths["/api/v1/jobs"]["post"]["responses"]
    assert "403" in paths["/api/v1/jobs/{job_id}"]["delete"]["responses"]
    assert "403" not in paths["/api/v1/jobs"]["get"]["responses"]
    assert "403" not in paths["/api/v1/jobs/{job_id}/predict"]["post"]["responses"]
