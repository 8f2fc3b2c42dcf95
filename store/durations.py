"""Durations as people type them: `30d`, `12h`, `90m`, `45s`, `2w` (and `never`), for token expiry."""

from __future__ import annotations

import re
from datetime import timedelta

NEVER = "never"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"(\d+)\s*([smhdw])")
MAX_DAYS = 100 * 365  # beyond this a date no longer fits every database's datetime; say "never" instead


def parse_duration(text: str) -> timedelta | None:
    """`30d` → 30 days; `never` → None. Raises ValueError saying what is accepted."""
    text = text.strip().lower()
    if text == NEVER:
        return None
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: give a whole number and a unit (s, m, h, d or w), "
                         f"e.g. 30d, 12h, 2w, or 'never'")
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than 0 (or 'never')")
    if seconds > MAX_DAYS * 86400:
        raise ValueError(f"{text!r}: at most {MAX_DAYS} days; use 'never' for a token that does not expire")
    return timedelta(seconds=seconds)
