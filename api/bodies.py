"""A request's body is read whole, within `body_timeout_seconds`, before the request takes a concurrency slot.

A client that trickles its body then holds a greenlet and a socket, never a slot, a
database transaction or a thread. JSON bodies are kept in memory (they are at most
`max_request_bytes`); multipart uploads are parsed as they arrive, files spooled to disk.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from flask import request

from trainyard.api.errors import ApiError
from trainyard.store.green import green

BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class BodyTimeout(Exception):
    """The body did not arrive in time."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise BodyTimeout in this greenlet after `seconds` — under gevent (the served API); a no-op otherwise
    (the test client and other callers hand the app a body that is already complete)."""
    if not green():
        yield
        return
    from gevent import Timeout

    with Timeout(seconds, BodyTimeout):
        yield


def read_body(timeout: float) -> None:
    """Read (and cache) this request's whole body, or answer 408 when it has not arrived within `timeout` s."""
    if request.method not in BODY_METHODS:
        return
    try:
        with _deadline(timeout):
            if request.mimetype == "multipart/form-data":
                request.files  # noqa: B018 - parses the stream now: fields in memory, files spooled to disk
            else:
                request.get_data(cache=True)
    except BodyTimeout:
        raise ApiError(408, f"the request body did not arrive within {timeout:g} s (body_timeout_seconds); "
                            "send it at once, or through a proxy that buffers it", kind="request-timeout") from None
