"""Whether this process is served by gevent (the API's gunicorn workers patch the standard library at start).

There, blocking calls that gevent cannot see — a long computation, SQLite waiting for its
lock — stop every connection of the process; the callers of `green()` do those
differently (api.offload, api.bodies, store.db).
"""

from __future__ import annotations


def green() -> bool:
    """True when gevent has monkey-patched this process's sockets."""
    try:
        from gevent.monkey import is_module_patched
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return is_module_patched("socket")
