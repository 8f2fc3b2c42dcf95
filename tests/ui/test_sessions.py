"""Dashboard sign-in, sessions and CSRF, through Flask's test client (tests/ui/test_browser.py drives a browser)."""

from __future__ import annotations

import re

import pytest

from trainyard.api.ui import sessions
from trainyard.store.db import session_scope
from trainyard.store.models import ApiToken
from trainyard.store.tokens import create_token, digest

from tests.support.api import problem, xor

XSS = "<img src=x onerror=alert(1)>"


def sign_in(api, token: str):
    """POST the sign-in form; the session cookie's value and the CSRF token of the next page."""
    client = api.app.test_client()
    r = client.post("/ui/signin", data={"token": token, "next": "/ui/jobs"})
    assert r.status_code == 303 and r.headers["Location"] == "/ui/jobs"
    page = client.get("/ui/jobs")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf-token" content="([0-9a-f]{64})"', page.get_data(as_text=True)).group(1)
    return client, client.get_cookie(sessions.COOKIE).value, csrf


def test_root_sends_a_stranger_to_sign_in_and_a_signed_in_user_to_the_jobs(api_both):
    stranger = api_both.app.test_client()
    r = stranger.get("/")
    assert r.status_code == 302 and r.headers["Location"] == "/ui/signin"
    r = stranger.get("/ui/jobs/abc")
    assert r.status_code == 302 and r.headers["Location"].startswith("/ui/signin?next=")
    client, _, _ = sign_in(api_both, api_both.alice.token)
    assert client.get("/").headers["Location"] == "/ui/jobs"


def test_the_session_cookie_is_httponly_strict_and_not_the_token(api_both):
    client = api_both.app.test_client()
    r = client.post("/ui/signin", data={"token": api_both.alice.token})
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    secret = client.get_cookie(sessions.COOKIE).value
    assert secret.startswith(sessions.SESSION_PREFIX) and api_both.alice.token not in cookie
    assert api_both.alice.token not in r.headers["Location"]
    with session_scope(api_both.sessions) as s:  # stored hashed, as tokens are, for alice, expiring
        row = s.query(ApiToken).filter_by(token_sha256=digest(secret)).one()
        assert row.name == sessions.SESSION_NAME and row.user_id == api_both.alice.user_id
        assert row.expires_at is not None and row.scopes == "read write"


def test_a_wrong_token_is_refused_with_401_and_no_cookie(api_both):
    client = api_both.app.test_client()
    r = client.post("/ui/signin", data={"token": "ty_nonsense"})
    assert r.status_code == 401 and "unknown, revoked or expired" in r.get_data(as_text=True)
    assert client.get_cookie(sessions.COOKIE) is None


def test_the_api_takes_the_cookie_but_writes_need_the_csrf_header(api_both):
    client, secret, csrf = sign_in(api_both, api_both.alice.token)
    assert client.get("/api/v1/jobs").status_code == 200
    body = problem(client.post("/api/v1/jobs", json=xor()), 403)
    assert "CSRF" in body["detail"]
    body = problem(client.post("/api/v1/jobs", json=xor(), headers={"X-CSRF-Token": "0" * 64}), 403)
    r = client.post("/api/v1/jobs", json=xor(), headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    job = r.get_json()
    assert api_both.alice.get(f"/jobs/{job['id']}").status_code == 200  # alice's job
    problem(client.post(f"/api/v1/jobs/{job['id']}/cancel"), 403)
    assert api_both.alice.get(f"/jobs/{job['id']}").get_json()["status"] == "queued"
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel", headers={"X-CSRF-Token": csrf}).status_code == 202
    assert api_both.alice.get(f"/jobs/{job['id']}").get_json()["status"] == "cancelled"


def test_a_form_without_the_csrf_token_is_refused(api_both):
    client, secret, csrf = sign_in(api_both, api_both.alice.token)
    r = client.post("/ui/signout", data={})
    assert r.status_code == 403 and "CSRF" in r.get_data(as_text=True)
    assert client.get("/api/v1/jobs").status_code == 200  # still signed in
    r = client.post("/ui/signout", data={"csrf": csrf})
    assert r.status_code == 303
    assert client.get_cookie(sessions.COOKIE) is None
    fresh = api_both.app.test_client()  # the old cookie no longer authenticates, even if a browser kept it
    fresh.set_cookie(sessions.COOKIE, secret)
    problem(fresh.get("/api/v1/jobs"), 401)
    assert fresh.get("/ui/jobs").status_code == 302


def test_another_users_job_is_not_found(api_both):
    mine = api_both.alice.submit(xor(name=XSS))
    theirs = api_both.bob.submit()
    client, _, _ = sign_in(api_both, api_both.alice.token)
    r = client.get(f"/ui/jobs/{theirs['id']}")
    assert r.status_code == 404 and "no job" in r.get_data(as_text=True).lower().replace("there is no job", "no job")
    page = client.get(f"/ui/jobs/{mine['id']}").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and XSS not in page


def test_pages_carry_a_csp_without_inline_script_and_no_framing(api_both):
    client, _, _ = sign_in(api_both, api_both.alice.token)
    for path in ("/ui/jobs", "/ui/compare", "/ui/sweeps", "/ui/workers", "/ui/datasets", "/ui/signin"):
        r = client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["Content-Security-Policy"]
        script = re.search(r"script-src ([^;]*)", csp).group(1)
        assert script == "'self'" and "frame-ancestors 'none'" in csp
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
        assert "<script>" not in r.get_data(as_text=True)  # every script is a file


def test_plotly_comes_from_the_installed_package_with_long_caching(api_both):
    client, _, _ = sign_in(api_both, api_both.alice.token)
    page = client.get("/ui/compare").get_data(as_text=True)
    url = re.search(r'src="(/ui/static/plotly.min.js\?v=[0-9a-f]+)"', page).group(1)
    r = client.get(url)
    assert r.status_code == 200 and r.mimetype == "text/javascript" and b"plotly" in r.data[:2000].lower()
    assert "immutable" in r.headers["Cache-Control"] and "max-age=31536000" in r.headers["Cache-Control"]
    assert client.get("/ui/static/..%2Fpages.py").status_code == 404


def test_a_sign_in_code_works_once_and_is_no_bearer_token(api_both):
    with session_scope(api_both.sessions) as s:
        code = sessions.create_code(s, user_name="alice")
    problem(api_both.client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {code}"}), 401)
    client = api_both.app.test_client()
    assert code in client.get(f"/ui/signin?code={code}").get_data(as_text=True)  # a button, not an automatic GET
    r = client.post("/ui/signin", data={"code": code})
    assert r.status_code == 303
    mine = api_both.alice.submit()
    assert client.get("/api/v1/jobs").get_json()["items"][0]["id"] == mine["id"]
    again = api_both.app.test_client().post("/ui/signin", data={"code": code})
    assert again.status_code == 401 and "used already or has expired" in again.get_data(as_text=True)


def test_a_read_only_token_signs_in_but_cannot_act(api_both):
    with session_scope(api_both.sessions) as s:
        token, _ = create_token(session=s, user_name="carol", scopes=["read"])
    client, _, csrf = sign_in(api_both, token)
    page = client.get("/ui/jobs").get_data(as_text=True)
    assert "read-only" in page and 'id="submit-form"' not in page
    body = problem(client.post("/api/v1/jobs", json=xor(), headers={"X-CSRF-Token": csrf}), 403)
    assert body["required_scope"] == "write"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/ui/", "/api/v1/jobs"])
def test_sign_in_goes_only_to_a_dashboard_page(api, target):
    r = api.app.test_client().post("/ui/signin", data={"token": api.alice.token, "next": target})
    assert r.status_code == 303 and r.headers["Location"] == "/ui/jobs"


def test_the_link_trainyard_up_prints_signs_the_token_owner_in_once(api_both, tmp_path):
    from trainyard.api.embedded import _banner

    settings = api_both.settings.replace(home=tmp_path, database_url=api_both.settings.database_url)
    settings.token_file.write_text(api_both.alice.token + "\n")
    banner = _banner(settings, "0.0.0.0", 8765)
    link = re.search(r"dashboard: (\S+)", banner).group(1)
    assert link.startswith("http://127.0.0.1:8765/ui/signin?code=tyc_") and api_both.alice.token not in banner
    code = link.split("code=")[1]
    client = api_both.app.test_client()
    assert client.post("/ui/signin", data={"code": code}).status_code == 303
    mine = api_both.alice.submit()
    assert [j["id"] for j in client.get("/api/v1/jobs").get_json()["items"]] == [mine["id"]]
    assert api_both.app.test_client().post("/ui/signin", data={"code": code}).status_code == 401


def test_another_users_sweep_is_not_found(api_both):
    spec = {"base": xor(), "space": {"model.layers[0].units": {"choice": [2, 3]}}, "objective": {"metric": "loss"},
            "sampler": "grid"}
    theirs = api_both.bob.post("/sweeps", json=spec).get_json()
    mine = api_both.alice.post("/sweeps", json=spec).get_json()
    client, _, _ = sign_in(api_both, api_both.alice.token)
    assert client.get(f"/ui/sweeps/{theirs['id']}").status_code == 404
    page = client.get(f"/ui/sweeps/{mine['id']}")
    assert page.status_code == 200
    # plotly's WebGL parallel coordinates compile code with Function(): eval on this page only, never inline script
    assert re.search(r"script-src ([^;]*)", page.headers["Content-Security-Policy"]).group(1) == "'self' 'unsafe-eval'"
    assert client.get("/ui/sweeps/nonexistent").status_code == 404


def test_with_auth_off_the_dashboard_still_uses_a_session_and_csrf(sqlite_settings):
    from tests.support.api import make_api

    api = make_api(sqlite_settings, auth=False)
    try:
        client = api.app.test_client()
        page = client.get("/ui/signin").get_data(as_text=True)
        assert "Authentication is off" in page and 'id="token"' not in page
        assert client.post("/ui/signin", data={}).status_code == 303
        page = client.get("/ui/jobs")
        assert page.status_code == 200
        assert client.post("/ui/signout", data={}).status_code == 403  # a form still needs the CSRF token
    finally:
        api.engine.dispose()


def test_queue_depths_count_everyones_queued_jobs_and_only_the_callers_own(api_both):
    api_both.alice.submit()
    api_both.alice.submit(xor(name="second", training={"epochs": 6, "seed": 2, "batch_size": 4}))
    api_both.bob.submit()
    client, _, _ = sign_in(api_both, api_both.alice.token)
    items = {q["name"]: q for q in client.get("/ui/workers/queues").get_json()["items"]}
    assert items["cpu"] == {"name": "cpu", "queued": 3, "mine": 2, "running_mine": 0}
    assert items["gpu"]["queued"] == 0
    assert api_both.app.test_client().get("/ui/workers/queues").status_code == 302  # signed out: sign in first


def test_signing_in_deletes_the_users_sessions_that_ended_a_week_ago(api_both):
    from datetime import timedelta

    from trainyard.store.models import utcnow

    _, old_secret, _ = sign_in(api_both, api_both.alice.token)
    _, recent_secret, _ = sign_in(api_both, api_both.alice.token)
    _, bobs_secret, _ = sign_in(api_both, api_both.bob.token)
    with session_scope(api_both.sessions) as s:
        for secret, ended in ((old_secret, 8), (recent_secret, 1), (bobs_secret, 8)):
            s.query(ApiToken).filter_by(token_sha256=digest(secret)).update(
                {"revoked_at": utcnow() - timedelta(days=ended)})
    sign_in(api_both, api_both.alice.token)
    with session_scope(api_both.sessions) as s:
        left = {row.token_sha256 for row in s.query(ApiToken).filter_by(name=sessions.SESSION_NAME)}
    assert digest(old_secret) not in left and {digest(recent_secret), digest(bobs_secret)} <= left
    assert len(left) == 3  # alice's recent and new one, bob's (his own sign-in cleans his)
