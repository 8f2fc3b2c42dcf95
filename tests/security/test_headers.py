"""Issue 12.8: security headers on every answer, a CSP that lets the docs page run only its own script."""

from __future__ import annotations

import base64
import hashlib
import re

from tests.support.api import make_api



def test_every_answer_carries_the_security_headers(sqlite_settings):
    api = make_api(sqlite_settings)
    try:
        job = api.alice.submit()
        answers = {"health (public)": api.client.get("/api/v1/health"),
                   "a job (authenticated)": api.alice.get(f"/jobs/{job['id']}"),
                   "a 404": api.alice.get("/jobs/nope"),
                   "a 401": api.client.get("/api/v1/jobs"),
                   "the docs page": api.client.get("/api/v1/docs")}
        for what, r in answers.items():
            assert r.headers["X-Content-Type-Options"] == "nosniff", what
            assert r.headers["X-Frame-Options"] == "DENY", what
            assert r.headers["Referrer-Policy"] == "no-referrer", what
        # What an authenticated caller gets must not be kept by a shared cache; public answers may be.
        assert answers["a job (authenticated)"].headers["Cache-Control"] == "no-store"
        assert answers["a 404"].headers["Cache-Control"] == "no-store"
        assert "no-store" not in answers["health (public)"].headers.get("Cache-Control", "")
    finally:
        api.engine.dispose()


def test_the_docs_page_may_run_exactly_its_own_inline_script(sqlite_settings):
    api = make_api(sqlite_settings)
    try:
        r = api.client.get("/api/v1/docs")
        csp = dict(part.strip().split(" ", 1) for part in r.headers["Content-Security-Policy"].split(";"))
        page = r.get_data(as_text=True)
        scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
        assert len(scripts) == 1
        digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
        assert csp["script-src"] == f"'sha256-{digest}'"  # no 'unsafe-inline', nothing from elsewhere
        assert csp["default-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
        assert csp["connect-src"] == "'self'"  # it fetches openapi.json from this server only
    finally:
        api.engine.dispose()
