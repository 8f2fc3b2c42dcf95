"""`trainyard run SPEC.json`: train in-process, no service — same spec, same result as a job."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

from core.backends.base import Callbacks
from core.errors import SpecError, TrainyardError
from core.job import json_safe, train_job, versions
from core.spec import normalised
from core.validate import validate_spec


class ProgressBar:
    """Epoch, loss, first metric and ETA on one line of a terminal (or a line every ~10% elsewhere)."""

    def __init__(self, epochs: int, stream: TextIO = sys.stderr, width: int = 24):
        self.epochs, self.stream, self.width = epochs, stream, width
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self.last_draw = 0.0
        self.last_decile = -1

    def update(self, row: dict) -> None:
        epoch, now = row["epoch"], time.monotonic()
        if self.tty:
            if now - self.last_draw < 0.1 and epoch < self.epochs:
                return
            self.last_draw = now
        else:
            decile = epoch * 10 // self.epochs
            if decile == self.last_decile:
                return
            self.last_decile = decile
        self.stream.write(("\r" if self.tty else "") + self._line(row, now) + ("" if self.tty else "\n"))
        self.stream.flush()

    def _line(self, row: dict, now: float) -> str:
        epoch = row["epoch"]
        done = int(self.width * epoch / self.epochs)
        elapsed = now - self.start
        eta = elapsed / epoch * (self.epochs - epoch)
        metrics = [f"{k} {v:.4f}" for k, v in row.items()
                   if k not in ("epoch", "time") and isinstance(v, float) and not k.startswith("val_")][:2]
        bar = "#" * done + "-" * (self.width - done)
        return f"epoch {epoch}/{self.epochs} [{bar}] {' '.join(metrics)} ETA {eta:.1f}s"

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _read_spec(path: str) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def run_command(spec_path: str, *, save: str | None = None, quiet: bool = False) -> int:
    """Train the spec in `spec_path`; print the result JSON as the last stdout line; 0 if it succeeded."""
    result: dict = {"status": "failed", "metrics": None, "error": None, "history": [], "versions": versions()}
    bar = None
    try:
        spec = validate_spec(_read_spec(spec_path))
        if spec.dataset.path is not None:  # a relative data path is relative to the spec file
            spec.dataset.path = str(Path(spec_path).parent / Path(spec.dataset.path).expanduser())
        history: list[dict] = []
        bar = None if quiet else ProgressBar(spec.training.epochs)

        def on_epoch(row: dict) -> None:
            history.append(row)
            if bar:
                bar.update(row)

        result["history"] = history
        trained = train_job(spec, Callbacks(on_epoch=on_epoch))
        result.update(status="succeeded", metrics=trained.metrics, history=trained.history,
                      versions=trained.versions, spec=normalised(spec))
        if save:
            Path(save).write_bytes(trained.model)
    except TrainyardError as exc:
        result["error"] = exc.to_dict()
    except KeyboardInterrupt:
        result.update(status="cancelled", error={"code": "cancelled", "message": "interrupted"})
    finally:
        if bar:
            bar.close()
    print(json.dumps(json_safe(result)))
    if result["error"] and not quiet:
        print(f"trainyard run: {result['error']['message']}", file=sys.stderr)
    return 0 if result["status"] == "succeeded" else 1
