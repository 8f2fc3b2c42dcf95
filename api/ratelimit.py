"""Per-token state kept in this process (each gunicorn worker has its own): rate-limit buckets, verified tokens."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """`rate` requests per second on average, bursts of up to `burst`; `allow(key)` returns seconds to wait (0 = go)."""

    def __init__(self, rate: float, burst: float | None = None, max_keys: int = 10_000):
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, 2 * rate)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, last refill)
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_keys:  # forget idle keys rather than grow without bound
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
            return (1 - tokens) / self.rate


# A verified token is remembered this long in each API process, saving a query per request;
# so a revoked token keeps working for at most this long.
TOKEN_CACHE_SECONDS = 5.0
TOKEN_CACHE_SIZE = 10_000


class TokenCache:
    """token sha256 → user id, for TOKEN_CACHE_SECONDS (thread-safe, bounded)."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> str | None:
        item = self._items.get(digest)
        return item[0] if item is not None and item[1] > time.monotonic() else None

    def put(self, digest: str, user_id: str) -> None:
        with self._lock:
            if len(self._items) >= TOKEN_CACHE_SIZE:
                now = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v[1] > now}
            self._items[digest] = (user_id, time.monotonic() + TOKEN_CACHE_SECONDS)
