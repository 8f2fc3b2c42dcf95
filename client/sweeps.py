"""The client's sweep calls (`/sweeps`): create, list, get, trials, cancel, delete, events and wait.

`SweepCalls` is mixed into `trainyard.client.Client`; it needs only the client's `http` transport and
`upload_local_dataset`. A sweep's trials are ordinary jobs: `Client.get(trial["job_id"])` and the
other job calls work on them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from trainyard.client.errors import ApiError, WaitTimeout
from trainyard.client.models import Resource
from trainyard.client.sse import Event, parse_events

SWEEP_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
TRIAL_SORTS = ("trial", "objective")


class SweepWaitTimeout(WaitTimeout):
    """`wait_sweep` gave up before the sweep reached a terminal status."""

    def __init__(self, sweep_id: str, timeout: float, status: str | None):
        super().__init__(sweep_id, timeout)
        self.args = (f"sweep {sweep_id} did not finish within {timeout:g} s (it is {status})",)


class Sweep(Resource):
    """One sweep as `GET /sweeps/{id}` returns it."""

    trials = property(lambda self: self.data.get("trials"))
    parallel = property(lambda self: self.data.get("parallel"))
    space = property(lambda self: self.data.get("space") or {})
    objective = property(lambda self: self.data.get("objective") or {})
    counts = property(lambda self: self.data.get("counts") or {})
    best = property(lambda self: self.data.get("best"))
    error = property(lambda self: self.data.get("error"))

    @property
    def done(self) -> bool:
        """True once the sweep is succeeded, failed or cancelled."""
        return self.status in SWEEP_TERMINAL


def read_sweep_file(path: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """The sweep request in a JSON file and the folder a relative `base.dataset.path` is relative to."""
    path = Path(path)
    return json.loads(path.read_text()), path.parent


class SweepCalls:
    """The sweep half of `Client` (see the module docstring)."""

    http: Any
    upload_local_dataset: Callable[..., tuple[dict[str, Any], dict[str, Any] | None]]

    def create_sweep(self, request: dict[str, Any] | str | os.PathLike, *, base_dir: str | os.PathLike | None = None,
                     on_upload: Callable[[str, dict[str, Any]], None] | None = None) -> Sweep:
        """Start a sweep (a request dict or a JSON file's path); the service queues its first trials at once.

        Not retried: the service takes no Idempotency-Key for sweeps, so a retry after a lost answer could start
        a second sweep. A local `base.dataset.path` is uploaded first, as `submit` does for a job, and
        `on_upload(FILE, record)` called; the upload is deleted again if the service refuses the sweep.
        """
        if not isinstance(request, dict):
            request, folder = read_sweep_file(request)
            base_dir = folder if base_dir is None else base_dir
        uploaded = None
        base = request.get("base")
        if isinstance(base, dict):
            local = base["dataset"].get("path") if isinstance(base.get("dataset"), dict) else None
            base, uploaded = self.upload_local_dataset(base, base_dir)
            request = {**request, "base": base}
            if uploaded is not None and on_upload is not None:
                on_upload(str(local), uploaded)
        try:
            return Sweep(self.http.json("POST", "/sweeps", json=request, retry=False))
        except ApiError as exc:
            if uploaded is not None and 400 <= exc.status < 500:
                try:
                    self.http.json("DELETE", f"/datasets/{uploaded['id']}", retry=True)
                except ApiError:
                    pass
            raise

    def get_sweep(self, sweep_id: str) -> Sweep:
        """One sweep: status, counts of its trials by state, the best trial so far."""
        return Sweep(self.http.json("GET", f"/sweeps/{sweep_id}", retry=True))

    def list_sweeps(self, *, status: str | None = None, limit: int | None = None,
                    page_size: int | None = None) -> Iterator[Sweep]:
        """The caller's sweeps (without their base spec), newest first, following `next_cursor` until `limit`
        sweeps (default all); `status`: queued, running, succeeded, failed or cancelled (comma-separated)."""
        params: dict[str, Any] = {"status": status} if status else {}
        params["limit"] = page_size or min(limit or 100, 500)
        for n, item in enumerate(self._pages("/sweeps", params)):
            if limit is not None and n >= limit:
                return
            yield Sweep(item)

    def sweep_trials(self, sweep_id: str, *, sort: str = "trial", limit: int | None = None,
                     page_size: int | None = None) -> list[dict[str, Any]]:
        """The sweep's trials `{trial, job_id, state, params, value, epoch, epochs, error}`, by trial number or best
        objective first (`sort="objective"`), following the pages until `limit` trials (default all)."""
        if sort not in TRIAL_SORTS:
            raise ValueError(f"sort must be one of {', '.join(TRIAL_SORTS)}, not {sort!r}")
        params: dict[str, Any] = {"sort": sort, "limit": page_size or min(limit or 500, 500)}
        trials = []
        for item in self._pages(f"/sweeps/{sweep_id}/trials", params):
            if limit is not None and len(trials) >= limit:
                break
            trials.append(item)
        return trials

    def cancel_sweep(self, sweep_id: str) -> Sweep:
        """Stop the sweep: no new trials, its queued and running trials are cancelled. Returns it afterwards."""
        try:
            self.http.json("POST", f"/sweeps/{sweep_id}/cancel", retry=True)
        except ApiError as exc:
            # A retried cancel whose first try got through sees 409: that is success.
            if exc.status != 409 or self.get_sweep(sweep_id).status != "cancelled":
                raise
        return self.get_sweep(sweep_id)

    def delete_sweep(self, sweep_id: str) -> None:
        """Delete a finished sweep and its trials' jobs."""
        self.http.json("DELETE", f"/sweeps/{sweep_id}", retry=True)

    def sweep_events(self, sweep_id: str, *, timeout: float = 75.0) -> Iterator[Event]:
        """The sweep's Server-Sent Events as they come, until the service ends the stream."""
        with self.http.request("GET", f"/sweeps/{sweep_id}/events", retry=True, stream=True,
                               timeout=(10.0, timeout), headers={"Accept": "text/event-stream"}) as response:
            yield from parse_events(line for line in response.iter_lines(decode_unicode=True))

    def wait_sweep(self, sweep_id: str, *, timeout: float | None = None, poll_interval: float = 1.0,
                   on_update: Callable[[Sweep, list[dict[str, Any]]], None] | None = None) -> Sweep:
        """Follow a sweep until it is succeeded, failed or cancelled; returns its final record.

        Every `poll_interval` seconds it reads the sweep and its trials and calls `on_update(sweep, trials)`
        (e.g. to draw a table). Raises `SweepWaitTimeout` (a `WaitTimeout`) after `timeout` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            sweep = self.get_sweep(sweep_id)
            if on_update is not None:
                on_update(sweep, self.sweep_trials(sweep_id))
            if sweep.done:
                return sweep
            if deadline is not None and time.monotonic() >= deadline:
                raise SweepWaitTimeout(sweep_id, timeout, sweep.status)
            time.sleep(poll_interval if deadline is None else max(0.0, min(poll_interval,
                                                                            deadline - time.monotonic())))

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            page = self.http.json("GET", path, params=params, retry=True)
            yield from page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return
            params = {**params, "cursor": cursor}
