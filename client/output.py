"""Text the CLI prints: aligned tables, a job's summary, problem details with field paths."""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from trainyard.client.errors import ApiError, field_errors
from trainyard.client.models import Job
from trainyard.client.progress import format_number


def cell(value: Any) -> str:
    """One table cell: numbers rounded, lists joined, null as `-`."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, (list, tuple)):
        return ",".join(cell(item) for item in value) or "-"
    if isinstance(value, dict):
        return " ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    """Rows as left-aligned columns under upper-case headers."""
    headers = list(headers or [c.upper() for c in columns])
    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in body]
    return "\n".join(lines)


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """`key   value` lines, skipping empty values."""
    pairs = [(k, v) for k, v in pairs if v not in (None, "", {}, [])]
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)


def progress_text(job: Job) -> str:
    """`412/1000 epochs` (or `-`)."""
    epoch, epochs = job.progress.get("epoch"), job.progress.get("epochs")
    if epoch is None and epochs is None:
        return "-"
    return f"{epoch or 0}/{epochs}" if epochs else str(epoch)


def metrics_text(metrics: dict[str, Any]) -> str:
    """`loss 0.0123  accuracy 1.0000  val_loss -`."""
    return "  ".join(f"{k} {format_number(v)}" for k, v in metrics.items() if not isinstance(v, (dict, list)))


def job_summary(job: Job) -> str:
    """Everything a person wants to know about one job, one field per line."""
    error = job.error
    queued = None
    if job.status == "queued":
        queued = f"position {job.queue_position}" if job.queue_position is not None else "waiting"
        if job.pending_reason:
            queued += f": {job.pending_reason}"
    return key_values([
        ("id", job.id), ("name", job.name), ("status", job.status),
        ("backend", f"{job.backend or '-'} on {job.device or '-'}"), ("progress", f"{progress_text(job)} epochs"),
        ("stopped", (job.progress or {}).get("stop_reason")),
        ("queued", queued), ("reused from", job.get("reused_from")), ("attempts", job.attempts),
        ("created", job.created_at), ("started", job.started_at),
        ("finished", job.finished_at), ("metrics", metrics_text(job.metrics)),
        ("error", f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else error),
    ])


def job_rows(jobs: Iterable[Job]) -> list[dict[str, Any]]:
    """Rows for the jobs table."""
    return [{"id": j.id, "name": j.name, "status": j.status, "backend": j.backend, "device": j.device,
             "progress": progress_text(j), "created": j.created_at} for j in jobs]


def problem_text(exc: ApiError) -> str:
    """A problem's title, detail and one line per field error (with its path)."""
    head = f"{exc.status} {exc.title}".strip() if exc.status else exc.title
    errors = field_errors(exc.errors)
    # A 422's detail is often its errors joined with "; ": then the lines below say it once, readably.
    repeated = exc.detail == "; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in errors)
    lines = [f"error: {head}" + (f": {exc.detail}" if exc.detail and not repeated else "")]
    for loc, msg in errors:
        lines.append(f"  {loc}: {msg}" if loc else f"  {msg}")
    if exc.retry_after is not None:
        lines.append(f"  retry after {exc.retry_after:g} s")
    return "\n".join(lines)


def problem_json(exc: ApiError) -> dict[str, Any]:
    """The error object `--json` prints."""
    return {"error": {"status": exc.status, "title": exc.title, "detail": exc.detail, "errors": exc.errors,
                      **{k: v for k, v in exc.problem.items() if k not in ("status", "title", "detail", "errors")}}}


def dumps(obj: Any) -> str:
    """One line of JSON, no NaN (the service never sends it either)."""
    return json.dumps(obj, separators=(",", ":"), default=str)
