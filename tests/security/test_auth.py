"""Nobody gets in without a live token (Ray CVE-2023-48022 was an unauthenticated jobs API), tokens are stored only
as hashes, `trainyard token revoke` shuts a token out, and no route serves a file named by the client.

The route tests enumerate Flask's URL map, so a route added later is covered — and fails them if it is open.
"""

from __future__ import annotations

import hashlib
import io
import inspect
import re
import subprocess
import sys
import time

from sqlalchemy import inspect as sa_inspect, select, text

from trainyard.api.tokencache import CACHE_SECONDS as TOKEN_CACHE_SECONDS
from trainyard.store.db import session_scope
from trainyard.store.models import ApiToken
from trainyard.store.tokens import create_token, revoke_tokens

from tests.support import ROOT, fakeworker as fake_worker, hostile
from tests.support.api import XOR_FIT, make_api, problem, xor
from tests.support.processes import settings_env, wait_for


def routes(app):
    """(endpoint, method, rule) for every route and method Flask answers, HEAD and OPTIONS included."""
    return [(rule.endpoint, method, rule) for rule in app.url_map.iter_rules() for method in sorted(rule.methods)
            if not rule.endpoint.startswith("ui.")]  # the dashboard's pages: a session cookie (tests/ui)


def fill(rule, job_id: str = "0123456789abcdef01234567", dataset_id: str = "0123456789abcdef01234567",
         sweep_id: str = "0123456789abcdef01234567") -> str:
    values = {"job_id": job_id, "dataset_id": dataset_id, "sweep_id": sweep_id}
    missing = set(rule.arguments) - set(values)
    assert not missing, f"route {rule.rule} has parameters this test does not know: {missing}; add them"
    return hostile.url_for_rule(rule, values)


def revoked_token(api) -> str:
    with session_scope(api.sessions) as s:
        token, _ = create_token(session=s, user_name="mallory")
        assert revoke_tokens(session=s, token=token) == 1
    return token


def test_every_route_but_the_public_ones_needs_a_live_token(limited):
    api = limited(auth_failures_per_address=10_000)  # hundreds of 401s from one address (test_throttle.py)
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    ds = api.alice.post("/datasets", content_type="multipart/form-data", data={
        "name": "d", "format": "csv", "target": "y", "file": (io.BytesIO(b"a,y\n0,0\n1,1\n0,0\n1,1\n"), "d.csv")},
    ).get_json()["id"]
    bad = {"none": {}, "empty bearer": {"Authorization": "Bearer "}, "basic": {"Authorization": "Basic YWxpY2U6eA=="},
           "wrong": {"Authorization": "Bearer ty_" + "A" * 43},
           "token's hash": {"Authorization": "Bearer " + hashlib.sha256(api.alice.token.encode()).hexdigest()},
           "revoked": {"Authorization": f"Bearer {revoked_token(api)}"},
           "another prefix": {"Authorization": f"Token {api.alice.token}"}}
    seen = set()
    for endpoint, method, rule in routes(api.app):
        url = fill(rule, job["id"], ds)
        seen.add(endpoint)
        for name, headers in bad.items():
            r = api.client.open(url, method=method, headers=headers, json={"inputs": [[0, 0]]}
                                if method == "POST" else None)
            if endpoint in hostile.PUBLIC_ENDPOINTS:
                assert r.status_code in ((200, 302) if endpoint == "docs.get_home" else (200, 503)), (
                    method, url, name, r.status_code)
                continue
            assert r.status_code == 401, (method, url, name, r.status_code)
            if method != "HEAD":
                assert problem(r, 401)["type"] == "urn:trainyard:problem:unauthorized"
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(seen) >= 17  # every resource route of DESIGN §6 was reached
    # Nothing was changed by all that: the job and the dataset are still there, and nothing new was queued.
    assert [j["id"] for j in api.alice.get("/jobs").get_json()["items"]] == [job["id"]]
    assert api.alice.get(f"/datasets/{ds}").status_code == 200


def test_public_routes_are_exactly_health_openapi_docs_and_metrics(api):
    from trainyard.api.app import PUBLIC

    assert PUBLIC == hostile.PUBLIC_ENDPOINTS
    doc = api.client.get("/api/v1/openapi.json").get_json()
    open_ops = {(path, m) for path, item in doc["paths"].items() for m, op in item.items() if op.get("security") == []}
    assert open_ops == {("/api/v1/health", "get"), ("/api/v1/openapi.json", "get"), ("/api/v1/docs", "get"),
                        ("/api/v1/metrics", "get"), ("/api/v1/", "get")}  # the root: a redirect to the docs
    assert doc["security"] == [{"bearer": []}]


def test_metrics_token_closes_metrics(sqlite_settings):
    a = make_api(sqlite_settings, metrics_token="m-secret")
    assert problem(a.client.get("/api/v1/metrics"), 401)
    assert problem(a.client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {a.alice.token}"}), 401)
    assert a.client.get("/api/v1/metrics", headers={"Authorization": "Bearer m-secret"}).status_code == 200
    a.engine.dispose()


def _all_stored_text(engine) -> list[str]:
    """Every value of every column of every table, as text (bytes decoded leniently)."""
    out = []
    with engine.connect() as conn:
        for table in sa_inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        out.append(bytes(value).decode("latin-1"))
                    elif value is not None:
                        out.append(str(value))
    return out


def test_the_database_holds_only_token_hashes(api_both):
    api = api_both
    cli = subprocess.run([sys.executable, "-m", "trainyard.client.cli", "token", "create", "--user", "carol"], cwd=ROOT,
                         env=settings_env(api.settings), capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    carol = cli.stdout.strip().splitlines()[-1]
    tokens = [api.alice.token, api.bob.token, carol]
    for token in tokens:  # use each, so any per-request bookkeeping has had its chance to store it
        r = api.client.post("/api/v1/jobs", json=xor(), headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201
    with session_scope(api.sessions) as s:
        stored = set(s.scalars(select(ApiToken.token_sha256)))
    assert stored == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}
    everything = "\n".join(_all_stored_text(api.engine))
    for token in tokens:
        assert re.fullmatch(r"ty_[A-Za-z0-9_-]{43}", token)
        assert token not in everything and token.removeprefix("ty_") not in everything
        assert token[3:23] not in everything  # not even a prefix of its secret part


def test_trainyard_token_revoke_shuts_the_token_out(api):
    env = settings_env(api.settings)
    r = api.alice.get("/jobs")
    assert r.status_code == 200  # alice's token is now in this API process's verified-token cache

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "trainyard.client.cli", "token", "revoke", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    done = cli(api.alice.token)
    assert done.returncode == 0 and "revoked 1 token" in done.stdout, done.stdout + done.stderr
    revoked_at = time.monotonic()
    # A cached token is trusted for at most TOKEN_CACHE_SECONDS more; then it is refused on every route.
    wait_for(lambda: api.alice.get("/jobs").status_code == 401, TOKEN_CACHE_SECONDS + 2,
                         "the revoked token to be refused")
    assert time.monotonic() - revoked_at <= TOKEN_CACHE_SECONDS + 2
    assert problem(api.alice.get("/jobs"), 401)["detail"].startswith("the token was revoked at ")
    assert cli(api.alice.token).returncode == 1  # nothing left to revoke
    assert api.bob.get("/jobs").status_code == 200  # other tokens are untouched
    assert cli("--user", "bob").returncode == 0
    fresh = make_api(api.settings)  # a new API process has no cache: refused at once
    assert fresh.client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {api.bob.token}"}).status_code == 401
    fresh.engine.dispose()
    assert cli("--user", "nobody").returncode == 1 and cli().returncode == 2


# --- no route serves a file named by the client -----------------------------------------------------------

FILE_SERVING = re.compile(r"send_file|send_from_directory|safe_join|\bopen\(|read_bytes|read_text|FileResponse|"
                          r"static_folder=(?!None)|os\.path\.join|Path\(")


def test_no_route_reads_a_file(api):
    modules = {sys.modules[api.app.view_functions[e].__module__] for e in api.app.view_functions}
    import trainyard.api.app as app_module
    import trainyard.api.auth as auth_module
    import trainyard.api.context as context_module
    import trainyard.api.errors as errors_module

    for module in modules | {app_module, auth_module, context_module, errors_module}:
        source = inspect.getsource(module)
        hits = [line.strip() for line in source.splitlines() if FILE_SERVING.search(line)
                and "no /static" not in line]
        assert hits == [], f"{module.__name__} touches files: {hits}"
    assert "static" not in api.app.view_functions and api.app.static_folder is None


def test_traversal_strings_in_every_path_parameter_find_nothing(limited):
    api = limited(rate_limit_per_second=1e6, rate_limit_burst=10**6)  # hundreds of requests: not the limit's test
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    with_params = [(e, m, rule) for e, m, rule in routes(api.app) if rule.arguments and m not in ("OPTIONS",)]
    assert with_params, "no parameterised routes found"
    for endpoint, method, rule in with_params:
        for attack in hostile.TRAVERSALS:
            url = fill(rule, attack, attack, attack)
            r = api.client.open(url, method=method, headers={"Authorization": f"Bearer {api.alice.token}"},
                                json={"inputs": [[0, 0]]} if method == "POST" else None)
            assert r.status_code in (404, 405), (method, url, r.status_code)
            assert b"root:" not in r.data and b"[fonts]" not in r.data
            if method != "HEAD":
                problem(r, r.status_code)
    assert api.alice.get(f"/jobs/{job['id']}").status_code == 200  # and the real one is still fine
