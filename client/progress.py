"""The progress bar `wait` draws on stderr: epoch, loss, one metric and the time left."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

_NOT_METRICS = frozenset({"epoch", "epochs", "loss", "time", "status", "id", "job_id", "type", "event"})


def format_duration(seconds: float) -> str:
    """`h:mm:ss` for a number of seconds."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def format_number(value: Any) -> str:
    """A metric value in at most ~6 significant digits; `-` for missing or null."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"
    return str(value)


def pick_metric(row: dict[str, Any]) -> tuple[str, Any] | None:
    """The metric to show beside the loss: accuracy if present, else the first training metric."""
    if "accuracy" in row:
        return "accuracy", row["accuracy"]
    for key, value in row.items():
        if key not in _NOT_METRICS and not key.startswith("val_") and isinstance(value, (int, float)):
            return key, value
    return None


class ProgressBar:
    """Redraws one line on a terminal; on a pipe or file prints a line every few seconds instead."""

    def __init__(self, stream: TextIO | None = None, width: int = 24, label: str = "",
                 clock: Any = time.monotonic):
        self.stream = stream or sys.stderr
        self.width = width
        self.label = label
        self.clock = clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.1 if self.tty else 5.0
        self.last_draw = float("-inf")
        self.start: tuple[float, int] | None = None  # (clock, epoch) at the first epoch seen
        self.text = ""

    def update(self, row: dict[str, Any], *, force: bool = False) -> None:
        """Show a progress row: `epoch`, `epochs`, `loss`, metrics, optionally `time` and `status`."""
        now = self.clock()
        epoch, epochs = row.get("epoch"), row.get("epochs")
        if isinstance(epoch, int) and self.start is None:
            self.start = (now, epoch)
        if not force and now - self.last_draw < self.interval:
            return
        self.last_draw = now
        self.text = self.render(row, now)
        if self.tty:
            self.stream.write("\r" + self.text + "\x1b[K")
        else:
            self.stream.write(self.text + "\n")
        self.stream.flush()

    def render(self, row: dict[str, Any], now: float) -> str:
        """The line for one row (without carriage return)."""
        parts = [self.label] if self.label else []
        epoch, epochs = row.get("epoch"), row.get("epochs")
        if isinstance(epoch, int) and isinstance(epochs, int) and epochs > 0:
            filled = min(self.width, self.width * epoch // epochs)
            parts.append("[" + "#" * filled + "-" * (self.width - filled) + "]")
            parts.append(f"epoch {epoch}/{epochs}")
        elif isinstance(epoch, int):
            parts.append(f"epoch {epoch}")
        if "loss" in row:
            parts.append(f"loss {format_number(row['loss'])}")
        metric = pick_metric(row)
        if metric:
            parts.append(f"{metric[0]} {format_number(metric[1])}")
        stopped = row.get("stop_reason") or row.get("stopped_early")
        eta = None if stopped else self.eta(row, now)
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        if row.get("status") and row.get("status") != "running":
            parts.append(str(row["status"]))
        if stopped:  # a converged scikit-learn job or an early stop: not a job left at 30 %
            parts.append("(converged: stopped early)" if "conver" in str(row.get("stop_reason") or "")
                         else "(stopped early)")
        if row.get("pending_reason"):
            parts.append(f"({row['pending_reason']})")
        return "  ".join(parts)

    def eta(self, row: dict[str, Any], now: float) -> float | None:
        """Seconds left, from the row's training time or from the wall clock since the first epoch seen."""
        epoch, epochs = row.get("epoch"), row.get("epochs")
        if not (isinstance(epoch, int) and isinstance(epochs, int) and epoch > 0):
            return None
        if isinstance(row.get("time"), (int, float)):
            return row["time"] / epoch * (epochs - epoch)
        if self.start is None or epoch <= self.start[1]:
            return None
        return (now - self.start[0]) / (epoch - self.start[1]) * (epochs - epoch)

    def close(self, final: str | None = None) -> None:
        """End the bar's line, optionally replacing it with a final message."""
        if final is not None:
            self.text = final
            self.stream.write(("\r" + final + "\x1b[K\n") if self.tty else final + "\n")
        elif self.tty and self.text:
            self.stream.write("\n")
        self.stream.flush()
