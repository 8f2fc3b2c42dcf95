"""One audit hook for the whole test process (hooks cannot be removed) that records, while armed, the events that
loading hostile data must never raise: unpickling a class, running a command.

Not marshal.loads (every import raises it), nor subprocess.Popen (platform.processor() runs uname): the canary
files of tests.support.hostile catch those.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

WATCHED = ("pickle.find_class", "os.system", "os.exec", "os.posix_spawn")
_seen: list[tuple[str, tuple]] = []
_armed: list[bool] = []


def _hook(event: str, args: tuple) -> None:
    if _armed and event in WATCHED:
        _seen.append((event, args))


sys.addaudithook(_hook)  # once: a module is imported once


@contextlib.contextmanager
def watching() -> Iterator[list[tuple[str, tuple]]]:
    """Record the watched events raised inside the block; the list of (event, args) seen."""
    _seen.clear()
    _armed.append(True)
    try:
        yield _seen
    finally:
        _armed.clear()
