"""The throttle that runs before authentication: per client address, on Flask-Limiter.

Every answer of 401 counts against the caller's address (`auth_failures_per_address` per
`auth_failure_window_seconds`); once an address is over that budget, `check_client()`
answers its requests 429 before `auth.authenticate()` looks its token up, so a stream of
bad tokens costs no database work. The counters live in `rate_limit_storage_url`
(memory:// per process, redis://… shared by every API process). Behind
`trusted_proxies` reverse proxies the address is the one they add to X-Forwarded-For
(werkzeug's ProxyFix); with none, X-Forwarded-For is ignored, since a client could
write anything there.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from werkzeug.middleware.proxy_fix import ProxyFix

from trainyard.api.errors import ApiError
from trainyard.store.settings import Settings

EXTENSION = "trainyard.throttle"
SCOPE = "auth-failures"  # one counter per address, shared by every route
IPV6_PREFIX = 64  # an IPv6 client is usually given a whole /64: its addresses share one budget


@dataclass(frozen=True)
class Throttle:
    """One per app: the limiter and the guard whose call checks the current request's address."""

    settings: Settings
    limiter: Limiter
    guard: Callable[[], None]


def client_address() -> str:
    """The caller's address as the throttle counts it (an IPv6 address stands for its /64)."""
    address = request.remote_addr or "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


def _failed_authentication(response: Response) -> bool:
    return response.status_code == 401


def install(app: Flask) -> None:
    """Give `app` the address throttle (and, with `trusted_proxies` > 0, ProxyFix); `create_app` calls it."""
    settings: Settings = app.extensions["trainyard"].settings
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=settings.trusted_proxies)
    # Flask-Limiter logs each refusal at INFO: a client would choose how much this process logs.
    logging.getLogger("flask-limiter").setLevel(logging.WARNING)
    limiter = Limiter(client_address, app=app, storage_uri=settings.rate_limit_storage_url, strategy="fixed-window",
                      storage_options={"key_prefix": f"{settings.broker_namespace}limits"},  # Redis keys, as the broker's
                      in_memory_fallback_enabled=True)  # storage unreachable: count in this process meanwhile
    budget = f"{settings.auth_failures_per_address} per {settings.auth_failure_window_seconds} second"

    @limiter.shared_limit(budget, scope=SCOPE, deduct_when=_failed_authentication)
    def guard() -> None:
        """Does nothing itself: calling it makes the limiter test the address's budget (the 401s are deducted
        from it after the response)."""

    app.extensions[EXTENSION] = Throttle(settings=settings, limiter=limiter, guard=guard)


def check_client() -> None:
    """Refuse (429) a request whose address is over its budget of failed authentications; touches no database."""
    throttle: Throttle = current_app.extensions[EXTENSION]
    try:
        throttle.guard()
    except RateLimitExceeded:
        raise _refusal(throttle) from None


def _refusal(throttle: Throttle) -> ApiError:
    s = throttle.settings
    current = throttle.limiter.current_limit
    # window.reset_time, not reset_at: that one is rounded up a whole second past the window.
    wait = max(1, math.ceil(current.window.reset_time - time.time())) if current else s.auth_failure_window_seconds
    return ApiError(429, f"too many requests from {client_address()} failed authentication: over the limit of "
                         f"{s.auth_failures_per_address} per {s.auth_failure_window_seconds} s "
                         f"(auth_failures_per_address, auth_failure_window_seconds); retry in {wait} s",
                    kind="rate-limited", headers={"Retry-After": str(wait)})
