"""Text from a request made fit for one log line: control characters escaped, length bounded.

A path, name or header is the client's text: a raw CR or LF in it would start a line the
client wrote ("log forging"), and a long one would flood the log. Everything the API logs
that came from a request goes through `loggable`; unhandled errors are logged as one
bounded line by `one_line` (the full traceback only at DEBUG).
"""

from __future__ import annotations

import traceback
from pathlib import Path

MAX_TEXT = 300  # characters of one value kept in a log line
MAX_FRAMES = 3  # innermost frames named for an unhandled error


def _escape(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


def loggable(value: object, limit: int = MAX_TEXT) -> str:
    """`value` as text on one line: every non-printable character (CR, LF, NUL, ESC, U+2028 …) escaped as
    `\\n`, `\\x00`, `\\u2028`, and at most `limit` characters of it kept (the rest counted)."""
    text = str(value)
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(c if c.isprintable() else _escape(c) for c in cut)
    return cut if len(text) <= limit else f"{cut}…[{len(text) - limit:,} more characters]"


def one_line(exc: BaseException, frames: int = MAX_FRAMES) -> str:
    """`RecursionError: message [at api/jsonio.py:35 in non_finite ← …]`: the exception's type, its message
    (escaped and bounded) and its innermost `frames` frames, innermost first."""
    innermost = list(traceback.walk_tb(exc.__traceback__))[-frames:]
    where = " ← ".join(f"{_short_path(frame.f_code.co_filename)}:{line} in {frame.f_code.co_name}"
                       for frame, line in reversed(innermost))
    return f"{type(exc).__name__}: {loggable(exc)}" + (f" [at {where}]" if where else "")


def _short_path(filename: str) -> str:
    path = Path(filename)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
