"""The exceptions the client raises: one class per kind of problem+json answer (RFC 9457)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer from the service, carrying its problem+json fields."""

    def __init__(self, status: int, title: str = "", detail: str = "", errors: list[dict] | None = None,
                 problem: dict[str, Any] | None = None, retry_after: float | None = None):
        self.status = status
        self.title = title or ""
        self.detail = detail or ""
        self.errors = list(errors or [])
        self.problem = dict(problem or {})
        self.retry_after = retry_after
        super().__init__(self.describe())

    def describe(self) -> str:
        """One readable paragraph: status, title, detail and one line per field error."""
        head = f"{self.status} {self.title}".strip() if self.status else (self.title or "error")
        lines = [f"{head}: {self.detail}" if self.detail else head]
        lines.extend(f"  {loc}: {msg}" if loc else f"  {msg}" for loc, msg in field_errors(self.errors))
        return "\n".join(lines)


def field_errors(errors: list[Any]) -> list[tuple[str, str]]:
    """(field path, message) pairs from an `errors` list, whatever keys the server used."""
    pairs = []
    for item in errors:
        if not isinstance(item, dict):
            pairs.append(("", str(item)))
            continue
        loc = item.get("loc", item.get("field", item.get("pointer", item.get("path", ""))))
        if isinstance(loc, (list, tuple)):
            loc = ".".join(str(part) for part in loc)
        msg = item.get("msg", item.get("message", item.get("detail", "")))
        pairs.append((str(loc or ""), str(msg)))
    return pairs


class BadRequest(ApiError):
    """400: the request itself was malformed."""


class Unauthorized(ApiError):
    """401: missing or invalid token."""


class Forbidden(ApiError):
    """403: the token may not do this."""


class NotFound(ApiError):
    """404: no such job or dataset (or it belongs to someone else)."""


class Conflict(ApiError):
    """409: the resource is in the wrong state (e.g. cancelling a finished job)."""


class Gone(ApiError):
    """410: retention purged what was asked for (a job's history or model); the job and its metrics remain."""


class PayloadTooLarge(ApiError):
    """413: the body or upload exceeds a size limit."""


class UnsupportedMediaType(ApiError):
    """415: the upload's format is not one the service reads."""


class ValidationFailed(ApiError):
    """422: the spec or request is invalid; `errors` lists the fields."""


class RateLimited(ApiError):
    """429: too many requests; `retry_after` says when to try again (seconds) if the server said."""


class ServerError(ApiError):
    """500 and other 5xx answers that are not retried."""


class ServiceUnavailable(ServerError):
    """502/503/504 (after retries) or a service that cannot be reached at all."""


class ConnectionFailed(ServiceUnavailable):
    """No HTTP answer at all: the service is down, unreachable or the connection broke."""

    def __init__(self, url: str, reason: str):
        super().__init__(0, "connection failed", f"cannot reach {url}: {reason}")


class ServiceNotRunning(ConnectionFailed):
    """The connection was refused before the service ever answered: nothing listens there (not retried)."""

    HINT = ("is the service running? start one with `make run` (or `trainyard up`) at the repository root, "
            "or give its address with --url or TRAINYARD_URL")

    def __init__(self, url: str):
        super().__init__(url, f"Connection refused\n  {self.HINT}")


class DatasetFileError(ValueError):
    """A spec's local `dataset.path` cannot be sent: no such file, no labels file beside it, unknown format."""


class WaitTimeout(Exception):
    """`Client.wait` gave up before the job reached a terminal status."""

    def __init__(self, job_id: str, timeout: float):
        super().__init__(f"job {job_id} did not finish within {timeout:g} s")
        self.job_id = job_id
        self.timeout = timeout


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 410: Gone, 413: PayloadTooLarge,
    415: UnsupportedMediaType, 422: ValidationFailed, 429: RateLimited,
    502: ServiceUnavailable, 503: ServiceUnavailable, 504: ServiceUnavailable,
}


def error_for(status: int, problem: dict[str, Any], retry_after: float | None = None) -> ApiError:
    """The typed exception for an HTTP status and its parsed problem+json body."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    errors = problem.get("errors")
    return cls(status, str(problem.get("title") or ""), str(problem.get("detail") or ""),
               errors if isinstance(errors, list) else None, problem, retry_after)
