"""Which scope each route needs: one registry, checked once per request in api.app (403 without it).

The rule: a request that only reads (GET, HEAD, OPTIONS) needs `read`; anything else needs `write` —
submit, cancel, delete, upload, pin and whatever route is added later — unless EXCEPTIONS says
otherwise for its endpoint (a POST that changes nothing). A read-only token (`trainyard token create
--scopes read`) is what dashboards and CI should hold.
"""

from __future__ import annotations

from flask import Flask, request

from api.errors import ApiError
from store.tokens import READ, SCOPES, WRITE

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# endpoint → scope, where the method alone would say otherwise.
EXCEPTIONS: dict[str, str] = {
    "results.predict": READ,  # computes from a finished model; stores nothing
}


def required_scope(endpoint: str, method: str) -> str:
    """The scope a request to `endpoint` with `method` needs."""
    if endpoint in EXCEPTIONS:
        return EXCEPTIONS[endpoint]
    return READ if method.upper() in READ_METHODS else WRITE


def check(scopes: frozenset[str], endpoint: str, method: str) -> None:
    """403 problem+json naming the missing scope (RFC 6750's insufficient_scope), unless `scopes` hold the one
    the request needs."""
    needed = required_scope(endpoint, method)
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
            out[(method, rule.rule)] = required_scope(rule.endpoint, method)
    return out
