"""What each API process remembers of the tokens it verified: owner, scopes, expiry, and when it last wrote
their `last_used_at` (thread-safe, bounded).

A verified token is remembered for CACHE_SECONDS, saving a query per request; so a revoked token keeps working
in a process for at most that long (its expiry is checked on every request, from the cached `expires_at`).
`last_used_at` is written at most once a store.tokens.TOUCH_SECONDS per token and process, and the write itself
is conditional, so N processes write a busy token's row at most N times a minute and change it at most once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from trainyard.store.tokens import TOUCH_SECONDS

CACHE_SECONDS = 5.0
CACHE_SIZE = 10_000


@dataclass(frozen=True)
class TokenInfo:
    """One verified token as the API needs it."""

    token_id: str
    user_id: str
    scopes: frozenset[str]
    expires_at: datetime | None


class TokenCache:
    """token sha256 (or the local user's key) → TokenInfo, for CACHE_SECONDS."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[TokenInfo, float]] = {}
        self._touched: dict[str, float] = {}  # token id → last touch, kept across cache refreshes
        self._lock = threading.Lock()

    def get(self, key: str) -> TokenInfo | None:
        item = self._items.get(key)
        return item[0] if item is not None and item[1] > time.monotonic() else None

    def put(self, key: str, info: TokenInfo) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._items) >= CACHE_SIZE:
                self._items = {k: v for k, v in self._items.items() if v[1] > now}
            if len(self._touched) >= CACHE_SIZE:
                self._touched = {k: t for k, t in self._touched.items() if now - t < TOUCH_SECONDS}
            self._items[key] = (info, now + CACHE_SECONDS)

    def forget(self, key: str) -> None:
        """Drop `key` (a dashboard sign-out: this process stops accepting the session at once; others within
        CACHE_SECONDS)."""
        with self._lock:
            self._items.pop(key, None)

    def due_for_touch(self, token_id: str) -> bool:
        """True (and the token marked as touched now) if this process has not written its last_used_at within
        TOUCH_SECONDS; the caller then writes it."""
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(token_id, float("-inf")) < TOUCH_SECONDS:
                return False
            self._touched[token_id] = now
            return True
