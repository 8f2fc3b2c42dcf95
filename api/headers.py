"""Security headers on every answer: no MIME sniffing, no framing, no referrer, a strict CSP on HTML, and
`Cache-Control: no-store` on anything answered to an authenticated caller (a shared cache must not keep it)."""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, g

# HTML pages may load nothing and run nothing unless they say otherwise (the docs page lists its own hashes).
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
ALWAYS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def inline_hashes(page: str, tag: str) -> str:
    """The CSP source list (`'sha256-…' …`) allowing exactly the inline `<tag>` blocks of `page`."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.S)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)


def _add(response: Response) -> Response:
    for name, value in ALWAYS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    if g.get("user_id") is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask) -> None:
    app.after_request(_add)
