"""Path segments, query parameters and headers: checked before any view runs, read within their columns' range.

PostgreSQL refuses U+0000 in text (psycopg raises DataError, which was a 500), and no column
holds a lone surrogate; so text holding either is answered here, before any query: a path
segment as a missing resource (no id holds such a character: the same 404 as any unknown
id), a query parameter or a header the API reads as a 422 naming it. The body is checked
where it is parsed (`trainyard.api.jsonio.parse_json`, multipart fields in `trainyard.api.datasets`).
`int_param` reads an integer parameter no larger than the INTEGER column it is compared with.
"""

from __future__ import annotations

from flask import Flask, request

from trainyard.api.errors import invalid
from trainyard.api.jsonio import bad_text, escaped
from trainyard.store.errors import NotFound

INT_MAX = 2**31 - 1  # the largest value of an INTEGER column (PostgreSQL's int4)
TEXT_HEADERS = ("Idempotency-Key",)  # headers whose text the API stores or compares in a query


def check_request_text() -> None:
    """404 for a path segment, 422 for a query parameter or header, holding text no database column can store."""
    if request.endpoint is None:  # no route: a 404 follows anyway
        return
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and bad_text(value):
            raise NotFound(f"no {name.removesuffix('_id')} {value!r}")
    for name, value in request.args.items(multi=True):
        why = bad_text(name) or bad_text(value)
        if why:
            raise invalid([{"loc": escaped(name), "msg": f"the query parameter {why}"}])
    for name in TEXT_HEADERS:
        why = bad_text(request.headers.get(name, ""))
        if why:
            raise invalid([{"loc": name, "msg": f"the header {why}"}])


def int_param(name: str, raw: str | None, *, default: int, minimum: int = 0, maximum: int = INT_MAX) -> int:
    """The integer in a query parameter or header `name` (`default` when absent or empty), or a 422 naming it
    unless it is an integer from `minimum` to `maximum`."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid([{"loc": name, "msg": f"{raw[:50]!r} is not an integer"}]) from None
    if not minimum <= value <= maximum:
        raise invalid([{"loc": name, "msg": f"must be {minimum} to {maximum}"}])
    return value


def page_limit(default: int, maximum: int) -> int:
    """The `limit` query parameter of a paged list: `default` when absent, a 422 unless it is 1 to `maximum`."""
    return int_param("limit", request.args.get("limit"), default=default, minimum=1, maximum=maximum)


def install(app: Flask) -> None:
    """Check every request's path, query and text headers after authentication, before its view."""
    app.before_request(check_request_text)
