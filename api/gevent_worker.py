"""The gunicorn worker the API runs under: gevent, and gunicorn's own error answers as problem+json.

With gevent every connection is a greenlet, so idle keep-alive connections, half-sent
headers, slowly arriving bodies and open event streams cost memory, not one of a few
threads. gunicorn bounds the header read of every request by its `keepalive` setting
(`header_timeout_seconds`); the app bounds the body read (`trainyard.api.bodies`).

Requests gunicorn refuses before the app sees them (a malformed request line, a header
over its limits: 400, 414, 431 …) get gunicorn's HTML page by default; this worker
answers them as the API answers everything else, `application/problem+json`.
"""

from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

TYPE_PREFIX = "urn:trainyard:problem:"  # as api.errors; not imported: the gunicorn master loads this module


def problem_bytes(status: int, reason: str, detail: str) -> bytes:
    """A complete `Connection: close` HTTP response carrying an RFC 9457 problem."""
    body = json.dumps({"type": TYPE_PREFIX + reason.lower().replace(" ", "-"), "title": reason, "status": status,
                       "detail": detail or reason}, ensure_ascii=True).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_problem(sock, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for `gunicorn.util.write_error`: the same response, as problem+json instead of an HTML page."""
    util.write_nonblock(sock, problem_bytes(int(status_int), reason, mesg))


class ApiWorker(GeventWorker):
    """gunicorn's gevent worker with problem+json error answers (set in the worker process only)."""

    def init_process(self) -> None:
        util.write_error = write_problem  # gunicorn's handle_error calls util.write_error at run time
        super().init_process()
