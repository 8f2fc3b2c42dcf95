"""CPU-bound work of a request runs in a real thread when the API is served under gevent.

A greenlet that computes for seconds (parsing a large upload, validating a large spec,
a large predict) would hold the whole worker process: no other connection is served, and
gunicorn's arbiter, hearing nothing, kills the worker after its timeout. In gevent's
thread pool the computation shares the CPU with the event loop instead (the GIL switches
every few milliseconds). Only plain data goes in and out: the function must not touch
Flask's request context or the request's database session.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from flask import g

from trainyard.api.context import state
from trainyard.store.green import green

T = TypeVar("T")


def offload(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`, in gevent's thread pool when served by gevent (exceptions re-raised here).

    While it runs, the request gives back its concurrency slot (api.app), so a few long computations never
    keep every other request of the process waiting.
    """
    if not green():
        return fn(*args, **kwargs)
    from gevent import get_hub

    slot = state().active if g.get("active") else None
    if slot is not None:
        slot.release()
    try:
        return get_hub().threadpool.apply(fn, args, kwargs)
    finally:
        if slot is not None:
            slot.acquire()
