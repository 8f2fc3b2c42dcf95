"""HTTP transport: base URL and token, retries with exponential backoff, problem+json to exceptions."""

from __future__ import annotations

import email.utils
import time
from typing import Any, Callable

import requests

from trainyard.client.errors import ApiError, ConnectionFailed, ServiceNotRunning, error_for

RETRY_STATUSES = frozenset({502, 503, 504})
API_PREFIX = "/api/v1"

# on_retry(attempt, max_attempts, reason, delay): retry number `attempt` (1-based) of at most
# `max_attempts` retries follows in `delay` seconds, because of `reason` ("503 Service Unavailable: ...").
RetryCallback = Callable[[int, int, str, float], None]


def api_root(url: str) -> str:
    """`http://host:8000`, `host:8000` or `http://host:8000/api/v1/` → `http://host:8000/api/v1`."""
    url = url.strip().rstrip("/")
    if "://" not in url:  # `--url 127.0.0.1:8811`: a scheme-less address is plain HTTP
        url = "http://" + url
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


class Transport:
    """Sends requests to one service; retries only the calls it is told are safe to repeat."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 60.0, retries: int = 5,
                 backoff: float = 0.5, max_backoff: float = 8.0, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, on_retry: RetryCallback | None = None):
        self.root = api_root(url)
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.session = session or requests.Session()
        self.sleep = sleep
        self.on_retry = on_retry
        self.answered = False  # whether this service has answered once: a refusal after that is a restart

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0-based): doubling, capped, or the server's Retry-After."""
        wait = min(self.max_backoff, self.backoff * (2 ** attempt))
        if retry_after is not None:
            wait = min(self.max_backoff, max(wait, retry_after))
        return wait

    def wait_before_retry(self, attempt: int, reason: str, retry_after: float | None = None) -> None:
        """Tell `on_retry` (if any) why and how long, then sleep before retry number `attempt + 1`."""
        wait = self.delay(attempt, retry_after)
        if self.on_retry is not None:
            self.on_retry(attempt + 1, self.retries, reason, wait)
        self.sleep(wait)

    def request(self, method: str, path: str, *, retry: bool, stream: bool = False,
                timeout: float | tuple[float, float] | None = None, headers: dict[str, str] | None = None,
                retry_statuses: frozenset[int] = RETRY_STATUSES, **kwargs: Any) -> requests.Response:
        """One call; connection errors and `retry_statuses` (502/503/504) are retried with backoff when `retry`.

        Raises the `ApiError` subclass for the answer's status, or `ConnectionFailed`.
        """
        url = self.root + path
        all_headers = {"Accept": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.session.request(method, url, headers=all_headers, stream=stream,
                                                timeout=timeout or self.timeout, **kwargs)
            except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                    requests.exceptions.InvalidURL) as exc:  # never worth a retry
                raise ConnectionFailed(self.root, f"not a usable URL ({exc})") from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not self.answered and _refused(exc):  # nothing listens there: waiting will not help
                    raise ServiceNotRunning(self.root) from exc
                if last:
                    raise ConnectionFailed(self.root, _reason(exc)) from exc
                self.wait_before_retry(attempt, f"cannot reach {self.root}: {_reason(exc)}")
                continue
            self.answered = True
            if response.status_code in retry_statuses and not last:
                retry_after = retry_after_seconds(response)
                reason = problem_error(response).describe().splitlines()[0]
                response.close()
                self.wait_before_retry(attempt, reason, retry_after)
                continue
            if response.status_code >= 400:
                raise problem_error(response)
            return response
        raise AssertionError("unreachable")  # the loop always returns or raises

    def json(self, method: str, path: str, *, retry: bool, **kwargs: Any) -> Any:
        """A request whose answer is JSON (None for 204)."""
        response = self.request(method, path, retry=retry, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def problem_error(response: requests.Response) -> ApiError:
    """The typed exception for an error answer, from its problem+json body (or its text)."""
    problem: dict[str, Any] = {}
    try:
        body = response.json()
        if isinstance(body, dict):
            problem = body
    except ValueError:
        text = response.text.strip()
        problem = {"title": response.reason or "", "detail": text[:500]}
    problem.setdefault("title", response.reason or "")
    return error_for(response.status_code, problem, retry_after_seconds(response))


def retry_after_seconds(response: requests.Response) -> float | None:
    """The Retry-After header as seconds (a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _refused(exc: BaseException) -> bool:
    """Whether a connection error is a refusal (nothing listens at the address), anywhere in its chain."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        error = todo.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ConnectionRefusedError):
            return True
        todo.extend([error.__cause__, error.__context__, getattr(error, "reason", None),
                     *(a for a in error.args if isinstance(a, BaseException))])
    return "Connection refused" in str(exc)


def _reason(exc: Exception) -> str:
    # requests nests the useful part ("Connection refused") deep inside urllib3's message.
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "Connection reset",
                   "Remote end closed connection"):
        if marker in text:
            return marker
    return text[:200]
