"""`Client.wait`: follow a job to its end over the SSE stream, or by polling when the stream is unavailable."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

import requests

from trainyard.client.errors import ApiError, NotFound, ServiceUnavailable, WaitTimeout
from trainyard.client.models import TERMINAL, Job
from trainyard.client.progress import ProgressBar
from trainyard.client.sse import parse_events

if TYPE_CHECKING:
    from trainyard.client.client import Client

ProgressArg = bool | Callable[[dict[str, Any]], None]


class Waiter:
    """`Client.wait`: the SSE stream first, polling when the stream is unavailable or keeps ending."""

    def __init__(self, client: "Client", job_id: str, *, timeout: float | None, progress: ProgressArg,
                 poll_interval: float):
        self.client, self.job_id, self.poll_interval = client, job_id, poll_interval
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self.timeout = timeout
        self.bar = ProgressBar(label=job_id) if progress is True else None
        self.callback = progress if callable(progress) else None
        self.epochs: int | None = None
        self.last_epoch = 0

    def run(self) -> Job:
        job = self.client.get(self.job_id)
        try:
            return self.follow(job)
        finally:
            if self.bar:
                self.bar.close()

    def follow(self, job: Job) -> Job:
        use_sse, quiet_ends = True, 0
        while not job.done:
            self.epochs = job.progress.get("epochs") or job.spec.get("training", {}).get("epochs") or self.epochs
            self.report({**job.progress, "status": job.status, "pending_reason": job.pending_reason})
            self.check_deadline()
            if use_sse:
                outcome, events = self.stream()
                quiet_ends = 0 if events else quiet_ends + 1
                use_sse = outcome != "unavailable" and quiet_ends < 3
            else:
                self.poll_history()
                time.sleep(self.remaining(self.poll_interval))
            job = self.client.get(self.job_id)
        self.report({**job.progress, **job.metrics, "status": job.status}, force=True)
        return job

    def remaining(self, at_most: float) -> float:
        if self.deadline is None:
            return at_most
        return max(0.0, min(at_most, self.deadline - time.monotonic()))

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise WaitTimeout(self.job_id, self.timeout or 0.0)

    def report(self, row: dict[str, Any], force: bool = False) -> None:
        row = {k: v for k, v in row.items() if v is not None}
        if isinstance(row.get("epoch"), int):
            self.last_epoch = max(self.last_epoch, row["epoch"])
        if self.epochs and "epochs" not in row:
            row["epochs"] = self.epochs
        if self.callback:
            self.callback(row)
        if self.bar:
            self.bar.update(row, force=force)

    def stream(self) -> tuple[str, int]:
        """Read the event stream: ("terminal" | "ended" | "unavailable", number of events seen)."""
        read_timeout = max(1.0, self.remaining(30.0))
        count = 0
        headers = {"Accept": "text/event-stream"}
        if self.last_epoch:  # resume after the last epoch seen instead of replaying them all
            headers["Last-Event-ID"] = str(self.last_epoch)
        try:
            with self.client.http.request("GET", f"/jobs/{self.job_id}/events", retry=False, stream=True,
                                          timeout=(10.0, read_timeout), headers=headers) as response:
                if "text/event-stream" not in response.headers.get("Content-Type", ""):
                    return "unavailable", 0
                lines = response.iter_lines(decode_unicode=True)
                for event in parse_events(lines):
                    count += 1
                    payload = event.json()
                    if isinstance(payload, dict) and self.handle(event.event, payload):
                        return "terminal", count
                    if self.deadline is not None and time.monotonic() >= self.deadline:
                        return "ended", count
        except ApiError as exc:
            if isinstance(exc, ServiceUnavailable):  # also ConnectionFailed: poll, which retries with backoff
                return "ended", count
            if isinstance(exc, NotFound):
                self.client.get(self.job_id)  # the job itself gone is an error; a missing route is not
            return "unavailable", count
        except (requests.RequestException, ValueError):
            return "ended", count
        return "ended", count

    def handle(self, kind: str, payload: dict[str, Any]) -> bool:
        """Show one event; True when it carries a terminal status."""
        row = payload.get("progress") if isinstance(payload.get("progress"), dict) else {}
        row = {**payload, **row}
        if isinstance(row.get("epochs"), int):
            self.epochs = row["epochs"]
        if "epoch" in row or "status" in row:
            self.report(row)
        return row.get("status") in TERMINAL

    def poll_history(self) -> None:
        try:
            rows = self.client.history(self.job_id, since=self.last_epoch)
        except ApiError:
            return
        if rows:
            self.report(rows[-1])
