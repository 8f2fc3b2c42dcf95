"""What the sweep commands print: the trials table (state, parameters, objective, best so far), a sweep's summary,
and the live view `trainyard sweep --wait` redraws on a terminal (one line per change on a pipe)."""

from __future__ import annotations

import shutil
import sys
from typing import Any, TextIO

from trainyard.client.output import cell, key_values, table
from trainyard.client.progress import format_number
from trainyard.client.sweeps import Sweep

STATES = ("queued", "running", "succeeded", "failed", "cancelled", "pruned")


def short_names(paths: list[str]) -> dict[str, str]:
    """Column names for space paths: the last field (`learning_rate`), more of the path where two would clash."""
    names: dict[str, str] = {}
    for path in paths:
        parts = path.replace("[", ".[").split(".")
        for take in range(1, len(parts) + 1):
            name = ".".join(parts[-take:]).replace(".[", "[")
            if sum(1 for other in paths if other.replace("[", ".[").split(".")[-take:] == parts[-take:]) == 1:
                break
        names[path] = name
    return names


def better(direction: str, a: float, b: float | None) -> bool:
    return b is None or (a > b if direction == "maximize" else a < b)


def trial_rows(sweep: Sweep, trials: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """`(rows, columns, headers)` of the trials table in the order of `trials`, with the best objective of the
    trials up to each one (the trial marked `*` is the sweep's best)."""
    paths = list(sweep.space)
    names = short_names(paths)
    metric = sweep.objective.get("metric") or "objective"
    direction = sweep.objective.get("direction") or "maximize"
    best_trial = (sweep.best or {}).get("trial")
    running, best = {}, None  # trial → the best objective of the trials up to it
    for t in sorted(trials, key=lambda t: t.get("trial", 0)):
        value = t.get("value")
        if t.get("state") == "succeeded" and isinstance(value, (int, float)) and better(direction, value, best):
            best = value
        running[t.get("trial")] = best
    rows = []
    for t in trials:  # in the order given (by trial, or best objective first)
        params, epochs = t.get("params") or {}, t.get("epochs")
        rows.append({"trial": f"{t.get('trial')}{' *' if t.get('trial') == best_trial else ''}",
                     "state": t.get("state"), **{f"p:{p}": params.get(p) for p in paths},
                     "value": t.get("value"), "epoch": f"{t.get('epoch') or 0}/{epochs}" if epochs else t.get("epoch"),
                     "best": running[t.get("trial")]})
    columns = ["trial", "state", *(f"p:{p}" for p in paths), "value", "epoch", "best"]
    headers = ["TRIAL", "STATE", *(names[p] for p in paths), metric, "EPOCHS", "BEST SO FAR"]
    return rows, columns, headers


def trials_table(sweep: Sweep, trials: list[dict[str, Any]], last: int | None = None) -> str:
    """The trials table (`last`: only the newest that many trials, saying how many are left out)."""
    rows, columns, headers = trial_rows(sweep, trials)
    if not rows:
        return "no trials yet"
    hidden = 0
    if last is not None and len(rows) > last:
        hidden, rows = len(rows) - last, rows[-last:]
    text = table(rows, columns, headers)
    return (f"({hidden} earlier trials not shown)\n" if hidden else "") + text


def counts_text(sweep: Sweep) -> str:
    counts = sweep.counts
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in STATES if counts.get(s))


def headline(sweep: Sweep, with_best: bool = True) -> str:
    """`sweep ID (name): running, 12/40 trials: 2 running, 9 succeeded, 1 pruned; best val_accuracy 0.97 (trial 5)`."""
    counts = sweep.counts
    made = sum(counts.get(s, 0) for s in STATES)
    text = f"sweep {sweep.id}{f' ({sweep.name})' if sweep.name else ''}: {sweep.status}, {made}/{sweep.trials} trials"
    if counts_text(sweep):
        text += f": {counts_text(sweep)}"
    return text + (f"; {best_text(sweep)}" if sweep.best and with_best else "")


def best_text(sweep: Sweep) -> str:
    """`best val_accuracy 0.9733 (trial 5, job ID): learning_rate=0.01 units=64`."""
    best = sweep.best or {}
    metric = sweep.objective.get("metric") or "objective"
    params = " ".join(f"{name}={cell(best.get('params', {}).get(path))}"
                      for path, name in short_names(list(sweep.space)).items())
    return (f"best {metric} {format_number(best.get('value'))} (trial {best.get('trial')}, job {best.get('job_id')})"
            + (f": {params}" if params else ""))


def sweep_summary(sweep: Sweep) -> str:
    """One sweep, one field per line."""
    error = sweep.error
    objective = sweep.objective
    sampler = sweep.get("sampler") or {}
    pruner = sweep.get("pruner") or {}
    return key_values([
        ("id", sweep.id), ("name", sweep.name), ("status", sweep.status),
        ("objective", f"{objective.get('direction', '')} {objective.get('metric', '')}".strip()),
        ("sampler", cell(sampler)), ("pruner", cell(pruner)),
        ("trials", f"{sweep.trials} (at most {sweep.parallel} at once)"), ("counts", counts_text(sweep)),
        ("best", best_text(sweep) if sweep.best else None), ("created", sweep.get("created_at")),
        ("finished", sweep.get("finished_at")),
        ("error", f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else error),
    ])


def sweep_rows(sweeps: list[Sweep]) -> list[dict[str, Any]]:
    """Rows for the sweeps table."""
    return [{"id": s.id, "name": s.name, "status": s.status,
             "trials": f"{sum(s.counts.get(k, 0) for k in STATES)}/{s.trials}",
             "best": (s.best or {}).get("value"), "metric": s.objective.get("metric"), "created": s.get("created_at")}
            for s in sweeps]


class LiveView:
    """Draws a sweep as `wait_sweep` reports it: redrawn in place on a terminal, one line per change elsewhere."""

    def __init__(self, stream: TextIO | None = None, clear_at_end: bool | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        # The final table goes to stdout: on the same terminal the live one is erased, not left above it.
        self.clear_at_end = sys.stdout.isatty() if clear_at_end is None else clear_at_end
        self.drawn_lines = 0
        self.seen: dict[int, str] = {}  # trial → last state printed (pipes)
        self.last_headline = ""

    def __call__(self, sweep: Sweep, trials: list[dict[str, Any]]) -> None:
        if self.tty and sweep.done and self.clear_at_end:
            self._clear()
        elif self.tty:
            self._redraw(sweep, trials)
        else:
            self._log_changes(sweep, trials)
        self.stream.flush()

    def _redraw(self, sweep: Sweep, trials: list[dict[str, Any]]) -> None:
        size = shutil.get_terminal_size((100, 24))
        text = headline(sweep) + "\n" + trials_table(sweep, trials, last=max(3, size.lines - 5))
        lines = [line[:size.columns - 1] for line in text.splitlines()]  # a wrapped line would break the redraw
        self._clear()
        self.stream.write("\n".join(lines) + "\n")
        self.drawn_lines = len(lines)

    def _clear(self) -> None:
        if self.drawn_lines:
            self.stream.write(f"\x1b[{self.drawn_lines}F\x1b[J")  # back to the top of the last drawing, clear below
        self.drawn_lines = 0

    def _log_changes(self, sweep: Sweep, trials: list[dict[str, Any]]) -> None:
        rows, columns, _ = trial_rows(sweep, trials)
        names = short_names(list(sweep.space))
        for trial, row in zip(trials, rows):
            number, state = trial.get("trial"), trial.get("state")
            if self.seen.get(number) == state or state == "queued":
                continue
            self.seen[number] = state
            params = " ".join(f"{names[p]}={cell(row[f'p:{p}'])}" for p in sweep.space)
            value = f"  {sweep.objective.get('metric', 'objective')} {format_number(row['value'])}" \
                if row["value"] is not None else ""
            self.stream.write(f"trial {number} {state}  {params}{value}  best so far {format_number(row['best'])}\n")
        line = headline(sweep)
        if sweep.done and line != self.last_headline:
            self.stream.write(line + "\n")
        self.last_headline = line
