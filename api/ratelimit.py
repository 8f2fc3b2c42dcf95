"""The per-token rate limit, on Flask-Limiter, counted in `rate_limit_storage_url` — so with Redis (the
compose file's, or the broker's when that is a Redis) one limit holds across every API process, not one per
process.

The settings keep their meaning: `rate_limit_per_second` on average, bursts of `rate_limit_burst`. They
become a moving window of `rate_limit_burst` requests in any `rate_limit_burst / rate_limit_per_second`
seconds (rounded to whole seconds, at least 1; 200 in any 2 s by default): a fresh token may send its whole
burst at once, and no token averages more than the rate over a window. Keys are token ids (never a token or
its hash). With the storage unreachable each process counts on its own until it is back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, g
from flask_limiter import Limiter, RateLimitExceeded

from trainyard.api.errors import ApiError
from trainyard.store.settings import Settings

EXTENSION = "trainyard.ratelimit"
SCOPE = "token"
STORAGE_TIMEOUT_SECONDS = 2.0


def window(settings: Settings) -> tuple[int, int]:
    """(requests, seconds): the moving window the rate and burst settings become."""
    seconds = max(1, round(settings.rate_limit_burst / settings.rate_limit_per_second))
    return max(1, round(settings.rate_limit_per_second * seconds)), seconds


@dataclass(frozen=True)
class TokenLimit:
    settings: Settings
    limiter: Limiter
    guard: Callable[[], None]


def _key() -> str:
    return f"token:{g.rate_key}"


def install(app: Flask) -> None:
    """Give `app` the per-token limit; `create_app` calls it. `check(key)` applies it."""
    settings: Settings = app.extensions["trainyard"].settings
    limiter = Limiter(_key, app=app, storage_uri=settings.rate_limit_storage_url, strategy="moving-window",
                      storage_options={"key_prefix": f"{settings.broker_namespace}limits",
                                       # a Redis that hangs costs a request this long, not forever
                                       "socket_timeout": STORAGE_TIMEOUT_SECONDS,
                                       "socket_connect_timeout": STORAGE_TIMEOUT_SECONDS},
                      in_memory_fallback_enabled=True)  # storage unreachable: count in this process meanwhile
    requests, seconds = window(settings)

    @limiter.shared_limit(f"{requests} per {seconds} second", scope=SCOPE)
    def guard() -> None:
        """Does nothing itself: calling it makes the limiter count the request against the token's window."""

    app.extensions[EXTENSION] = TokenLimit(settings=settings, limiter=limiter, guard=guard)


def check(key: str) -> None:
    """Count this request against `key`'s window (a token id); 429 problem+json with Retry-After when over."""
    limit: TokenLimit = current_app.extensions[EXTENSION]
    g.rate_key = key
    try:
        limit.guard()
    except RateLimitExceeded:
        raise _refusal(limit) from None


def _refusal(limit: TokenLimit) -> ApiError:
    s = limit.settings
    requests, seconds = window(s)
    current = limit.limiter.current_limit
    # The moving window's reset_time is when its oldest request leaves it: one slot is free again then.
    wait = max(1, math.ceil(current.window.reset_time - time.time())) if current else seconds
    return ApiError(429, f"over the rate limit of {s.rate_limit_per_second:g} requests per second per token "
                         f"(rate_limit_per_second; bursts of {s.rate_limit_burst}, rate_limit_burst: at most "
                         f"{requests} requests in any {seconds} s, across every API process); retry in {wait} s",
                    kind="rate-limited", headers={"Retry-After": str(wait)})
