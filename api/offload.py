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

T = TypeVar("T")


def _served_by_gevent() -> bool:
    try:
        from gevent.monkey import is_module_patched
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return is_module_patched("socket")


def offload(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`, in gevent's thread pool when served by gevent (exceptions re-raised here)."""
    if not _served_by_gevent():
        return fn(*args, **kwargs)
    from gevent import get_hub

    return get_hub().threadpool.apply(fn, args, kwargs)
