"""Every error the API answers with, as RFC 9457 `application/problem+json`.

Routes raise `ApiError` (or one of the exceptions handled below); nothing else builds
an error response, so every failure — including unknown routes and methods — has the
same shape: `type`, `title`, `status`, `detail`, `instance`, and for 422s `errors`,
a list of `{"loc", "msg"}` naming the field (e.g. `model.layers[2].activation`): at most
MAX_ERRORS of them, then one that counts the rest, and a detail of at most MAX_DETAIL
characters, however many errors a document holds.

An unhandled error is logged as one bounded line (api.logtext); its traceback only at DEBUG.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from trainyard.api.logtext import loggable, one_line
from trainyard.api.urls import UPLOAD_ENDPOINTS
from trainyard.core.errors import SpecError, TrainyardError
from trainyard.store.db import DATABASE_UNAVAILABLE

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:trainyard:problem:"
MAX_ERRORS = 100  # errors listed in one problem; a note counts the rest
MAX_DETAIL = 2000  # characters of `detail`
log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as problem+json; `kind` becomes the problem type (`urn:trainyard:problem:<kind>`)."""

    def __init__(self, status: int, detail: str, *, kind: str | None = None, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.kind = kind or HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")
        self.errors, self.headers, self.extra = errors, headers or {}, extra


def not_found(what: str, ident: str) -> ApiError:
    """The one 404 for a missing resource — also for another user's, which must look the same."""
    return ApiError(404, f"no {what} with id {ident!r}", kind="not-found")


def invalid(errors: list[dict], detail: str | None = None) -> ApiError:
    """A 422 listing `{"loc", "msg"}` errors."""
    return ApiError(422, detail or summary(errors), kind="invalid-request", errors=errors)


def invalid_spec(errors: list[dict], detail: str | None = None) -> ApiError:
    """A 422 about a submitted job spec's content: `invalid-spec`, as core's own spec errors are, whichever check
    found it (the dataset it names, a limit, a non-finite number)."""
    return ApiError(422, detail or summary(errors), kind="invalid-spec", errors=errors)


def summary(errors: list[dict]) -> str:
    """`loc: msg; loc: msg` of the first MAX_ERRORS errors (a detail from a million errors would be megabytes)."""
    return "; ".join(f"{e['loc']}: {e['msg']}" if e.get("loc") else e["msg"] for e in errors[:MAX_ERRORS])


def pydantic_errors(exc: ValidationError, prefix: str = "") -> list[dict]:
    """pydantic's errors as `{"loc": "inputs[3][1]", "msg"}` (the same path format as core.spec)."""
    out = []
    for e in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = prefix
        for part in e["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = e["msg"].removeprefix("Value error, ")
        out.append({"loc": loc, "msg": "unknown field" if e["type"] == "extra_forbidden" else msg})
    return out


def problem(status: int, detail: str, *, kind: str | None = None, title: str | None = None,
            errors: list[dict] | None = None, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """Build one problem+json response."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + (kind or "error"),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": _bounded(detail),
        "instance": request.path if request else None,
    }
    if errors is not None:
        body["errors"] = _listed(errors)
    body.update(extra)
    response = current_app.json.response(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _listed(errors: list[dict]) -> list[dict]:
    """The first MAX_ERRORS errors, then one that says how many more there were."""
    if len(errors) <= MAX_ERRORS:
        return errors
    more = len(errors) - MAX_ERRORS
    return errors[:MAX_ERRORS] + [{"loc": "", "msg": f"{more:,} more errors not listed (at most {MAX_ERRORS} are)"}]


def _bounded(detail: str) -> str:
    if detail is None or len(detail) <= MAX_DETAIL:
        return detail
    return f"{detail[:MAX_DETAIL]}… ({len(detail) - MAX_DETAIL:,} more characters)"


def _api_error(exc: ApiError) -> Response:
    return problem(exc.status, exc.detail, kind=exc.kind, errors=exc.errors, headers=exc.headers, **exc.extra)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    detail = exc.description or HTTPStatus(status).description
    if status == 404:
        detail = f"no route {request.path}"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.path}; allowed: {headers.get('Allow', 'none')}"
    elif status == 413:
        detail = _too_large(detail)
    kind = HTTPStatus(status).phrase.lower().replace(" ", "-")
    return problem(status, detail, kind=kind, headers=headers)


def _too_large(default: str) -> str:
    """Which limit a 413 passed: the body's size, or (a body within it) werkzeug's form limits, which cannot tell
    apart a form of too many parts from one with a too large field or part header."""
    limit, length = request.max_content_length, request.content_length
    if limit and (length is None or length > limit):
        setting = "max_upload_bytes" if request.endpoint in UPLOAD_ENDPOINTS else "max_request_bytes"
        return f"the request body is larger than the limit of {limit} bytes ({setting})"
    if request.mimetype == "multipart/form-data":
        return (f"the form has more than {request.max_form_parts:,} parts, or a field or part header larger than "
                f"{request.max_form_memory_size:,} bytes (the body itself is within its limit); a dataset upload "
                "needs only the parts file, labels, name, format, target and task")
    return default


def _spec_error(exc: SpecError) -> Response:
    return problem(422, exc.message, kind="invalid-spec", errors=exc.errors)


def _validation_error(exc: ValidationError) -> Response:
    errors = pydantic_errors(exc)
    return problem(422, summary(errors), kind="invalid-request", errors=errors)


def _trainyard_error(exc: TrainyardError) -> Response:
    return problem(422, exc.message, kind=exc.code.replace("_", "-"), errors=[{"loc": "", "msg": exc.message}])


def _database_unavailable(exc: Exception) -> Response:
    log.warning("database unavailable on %s %s: %s", loggable(request.method), loggable(request.path),
                loggable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    return problem(503, "the database is unavailable; retry shortly", kind="unavailable",
                   headers={"Retry-After": "5"})


def _unexpected(exc: Exception) -> Response:
    # One bounded line per error: a traceback per request (225 KB for a deep recursion) would flood the log.
    where = f"{loggable(request.method)} {loggable(request.path)}"
    log.error("unhandled error on %s: %s", where, one_line(exc))
    log.debug("traceback of the unhandled error on %s", where, exc_info=exc)
    return problem(500, "internal error; the server log has the details", kind="internal")


def register_error_handlers(app: Flask) -> None:
    """Route every exception through problem+json."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(SpecError, _spec_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(TrainyardError, _trainyard_error)
    for database_error in DATABASE_UNAVAILABLE:
        app.register_error_handler(database_error, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
    register_store_errors(app)


def _store_error(exc: Exception) -> Response:
    from trainyard.store import errors as e

    if isinstance(exc, e.NotFound):
        return problem(404, str(exc), kind="not-found")
    if isinstance(exc, e.Conflict):
        return problem(409, str(exc), kind="conflict")
    if isinstance(exc, e.Purged):
        return problem(410, str(exc), kind="purged")
    if isinstance(exc, e.BlobCorrupt):
        # Stored bytes that fail their sha256 are never served; the job has no usable model (409, as documented).
        log.error("%s %s: %s", loggable(request.method), loggable(request.path), loggable(exc))
        return problem(409, f"{exc}: the stored file is damaged and is not served", kind="corrupt-blob")
    if isinstance(exc, e.IdempotencyKeyReused):
        return problem(422, str(exc), kind="idempotency-key-reused",
                       errors=[{"loc": "Idempotency-Key", "msg": "already used for a different request"}])
    if isinstance(exc, e.BadCursor):
        return problem(422, "the cursor is not one this server gave out", kind="invalid-request",
                       errors=[{"loc": "cursor", "msg": "invalid cursor"}])
    return _unexpected(exc)


def register_store_errors(app: Flask) -> None:
    """The store's NotFound → 404, Conflict and BlobCorrupt → 409 (with the store's message), Purged → 410,
    BadCursor and IdempotencyKeyReused → 422."""
    from trainyard.store.errors import StoreError

    app.register_error_handler(StoreError, _store_error)
