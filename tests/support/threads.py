"""`in_threads(count, work)`: `work(0)` … `work(count - 1)` at once in threads, and what they raised (for claim races)."""

from __future__ import annotations

import threading
from typing import Callable


def in_threads(count: int, work: Callable[[int], None], timeout: float = 60) -> list[Exception]:
    """Run `work(i)` for each i in its own thread, wait for all (`timeout` seconds each), return their exceptions."""
    errors: list[Exception] = []

    def guarded(index: int) -> None:
        try:
            work(index)
        except Exception as exc:  # noqa: BLE001 - returned to the test, which asserts there are none
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors
