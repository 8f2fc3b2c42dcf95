"""Which scope each route needs: one registry, checked once per request in api.app (403 without it).

The rule: a request that only reads (GET, HEAD, OPTIONS) needs `read`; anything else needs `write` —
submit, cancel, delete, upload, pin and whatever route is added later — unless EXCEPTIONS says
otherwise for its path (a POST that changes nothing). The OpenAPI document lists 403 on each operation
that needs `write`, from the same function. A read-only token (`trainyard token create
--scopes read`) is what dashboards and CI should hold.
"""

from __future__ import annotations

import re

from flask import Flask, request

from trainyard.api.errors import ApiError
from trainyard.api.urls import PREFIX
from trainyard.store.tokens import READ, SCOPES, WRITE

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# (method, path as the OpenAPI document writes it) → scope, where the method alone would say otherwise.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("POST", "/jobs/{job_id}/predict"): READ,  # computes from a finished model; stores nothing
}


def required_scope(method: str, path: str) -> str:
    """The scope a `method` request to `path` (OpenAPI form: `/jobs/{job_id}`, no /api/v1) needs."""
    method = method.upper()
    if (method, path) in EXCEPTIONS:
        return EXCEPTIONS[(method, path)]
    return READ if method in READ_METHODS else WRITE


def openapi_path(rule: str) -> str:
    """A Flask rule (`/api/v1/jobs/<job_id>`) as the OpenAPI document's path (`/jobs/{job_id}`)."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.removeprefix(PREFIX))


def check(scopes: frozenset[str]) -> None:
    """403 problem+json naming the missing scope (RFC 6750's insufficient_scope), unless `scopes` hold the one
    the request needs."""
    method = request.method
    needed = required_scope(method, openapi_path(request.url_rule.rule if request.url_rule else request.path))
    if needed not in scopes:
        held = " ".join(s for s in SCOPES if s in scopes) or "none"
        raise ApiError(403, f"this token lacks the {needed!r} scope that {method} {request.path} needs (its scopes: "
                            f"{held}); a token with it: trainyard token create --user NAME --scopes {needed}",
                       kind="insufficient-scope", required_scope=needed, token_scopes=sorted(scopes),
                       headers={"WWW-Authenticate": f'Bearer realm="trainyard", error="insufficient_scope", '
                                                    f'scope="{needed}"'})


def route_scopes(app: Flask) -> dict[tuple[str, str], str]:
    """(method, rule) → scope for every route of `app` (for the docs and the test that audits the registry)."""
    out = {}
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out[(method, rule.rule)] = required_scope(method, openapi_path(rule.rule))
    return out
