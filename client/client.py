"""The Python client for trainyard's HTTP API (DESIGN §6): jobs, datasets, catalog and workers."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator

from client.errors import ApiError
from client.models import Job
from client.transport import Transport
from client.waiting import ProgressArg, Waiter

DEFAULT_URL = "http://127.0.0.1:8000"


def default_token() -> str | None:
    """TRAINYARD_TOKEN, else the last line of $TRAINYARD_HOME/token (TRAINYARD_HOME defaults to ./var)."""
    token = os.environ.get("TRAINYARD_TOKEN", "").strip()
    if token:
        return token
    path = Path(os.environ.get("TRAINYARD_HOME") or "var") / "token"
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1] if lines else None


class Client:
    """One service and one token; every method raises an `ApiError` subclass on an error answer.

    Args:
        url: the service's address (default TRAINYARD_URL, else http://127.0.0.1:8000).
        token: the bearer token (default TRAINYARD_TOKEN, else $TRAINYARD_HOME/token).
        retries, backoff, max_backoff: how safe calls are retried on connection errors and 502/503/504.
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0,
                 retries: int = 5, backoff: float = 0.5, max_backoff: float = 8.0):
        self.url = url or os.environ.get("TRAINYARD_URL") or DEFAULT_URL
        self.token = token if token is not None else default_token()
        self.http = Transport(self.url, self.token, timeout=timeout, retries=retries, backoff=backoff,
                              max_backoff=max_backoff)

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self.http.session.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- jobs ---------------------------------------------------------------------------

    def submit(self, spec: dict[str, Any] | str | os.PathLike, *, idempotency_key: str | None = None) -> Job:
        """Submit a spec (a dict or a JSON file's path); retried safely under one Idempotency-Key."""
        if not isinstance(spec, dict):
            spec = json.loads(Path(spec).read_text())
        key = idempotency_key or str(uuid.uuid4())
        return Job(self.http.json("POST", "/jobs", json=spec, retry=True, headers={"Idempotency-Key": key}))

    def get(self, job_id: str) -> Job:
        """One job's current record."""
        return Job(self.http.json("GET", f"/jobs/{job_id}", retry=True))

    def list(self, *, status: str | None = None, backend: str | None = None, name: str | None = None,
             limit: int | None = None, page_size: int | None = None) -> Iterator[Job]:
        """The caller's jobs, newest first, following `next_cursor` until `limit` jobs (default all)."""
        params: dict[str, Any] = {k: v for k, v in (("status", status), ("backend", backend), ("name", name)) if v}
        params["limit"] = page_size or min(limit or 100, 500)
        seen = 0
        while True:
            page = self.http.json("GET", "/jobs", params=params, retry=True)
            for item in page.get("items", []):
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield Job(item)
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and seen >= limit):
                return
            params["cursor"] = cursor

    def cancel(self, job_id: str) -> Job:
        """Request cancellation; returns the job's record afterwards."""
        try:
            self.http.json("POST", f"/jobs/{job_id}/cancel", retry=True)
        except ApiError as exc:
            # A retried cancel whose first try got through sees 409 "already finished": that is success.
            if exc.status != 409 or self.get(job_id).status != "cancelled":
                raise
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        """Delete a finished job and its artifacts."""
        self.http.json("DELETE", f"/jobs/{job_id}", retry=True)

    def history(self, job_id: str, since: int | None = None) -> list[dict[str, Any]]:
        """Every epoch's row so far (or those after epoch `since`)."""
        params = {"since": since} if since is not None else None
        return self.http.json("GET", f"/jobs/{job_id}/history", params=params, retry=True).get("epochs", [])

    def download_model(self, job_id: str, path: str | os.PathLike) -> Path:
        """Save the trained model file to `path` (written whole, then renamed into place)."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        with self.http.request("GET", f"/jobs/{job_id}/model", retry=True, stream=True,
                               headers={"Accept": "*/*"}) as response:
            try:
                with open(partial, "wb") as out:
                    for chunk in response.iter_content(1 << 16):
                        out.write(chunk)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        partial.replace(target)
        return target

    def predict(self, job_id: str, inputs: Any) -> dict[str, Any]:
        """`{"predictions": [...], "probabilities": [...]}` for raw feature rows (lists or an array)."""
        rows = inputs.tolist() if hasattr(inputs, "tolist") else [list(row) for row in inputs]
        return self.http.json("POST", f"/jobs/{job_id}/predict", json={"inputs": rows}, retry=True)

    def wait(self, job_id: str, timeout: float | None = None, progress: ProgressArg = True,
             poll_interval: float = 1.0) -> Job:
        """Follow a job until it is succeeded, failed or cancelled and return its final record.

        Follows the SSE stream `/jobs/{id}/events`; polls the job and its history when the stream
        is unavailable. `progress=True` draws a bar on stderr; a callable receives each progress row.
        Raises `WaitTimeout` after `timeout` seconds.
        """
        return Waiter(self, job_id, timeout=timeout, progress=progress, poll_interval=poll_interval).run()

    # --- datasets and the rest ------------------------------------------------------------

    def upload_dataset(self, path: str | os.PathLike, *, name: str | None = None, format: str | None = None,
                       target: str | None = None, task: str | None = None,
                       labels: str | os.PathLike | None = None) -> dict[str, Any]:
        """Upload a CSV, NPZ or IDX file (`labels`: the IDX labels file); not retried (not idempotent)."""
        path = Path(path)
        fields = {"name": name or path.stem, "format": format or guess_format(path), "target": target, "task": task}
        with contextlib.ExitStack() as files_open:
            files: dict[str, Any] = {"file": (path.name, files_open.enter_context(open(path, "rb")))}
            if labels is not None:
                files["labels"] = (Path(labels).name, files_open.enter_context(open(labels, "rb")))
            return self.http.json("POST", "/datasets", data={k: v for k, v in fields.items() if v}, files=files,
                                  retry=False)

    def list_datasets(self) -> list[dict[str, Any]]:
        """The caller's datasets."""
        return _items(self.http.json("GET", "/datasets", retry=True), "datasets")

    def get_dataset(self, dataset_id: str) -> dict[str, Any]:
        """One dataset's record."""
        return self.http.json("GET", f"/datasets/{dataset_id}", retry=True)

    def delete_dataset(self, dataset_id: str) -> None:
        """Delete a dataset (409 while a queued or running job uses it)."""
        self.http.json("DELETE", f"/datasets/{dataset_id}", retry=True)

    def catalog(self) -> dict[str, Any]:
        """Builtin datasets, backends, layer types, activations, losses, optimizers, initializers."""
        return self.http.json("GET", "/catalog", retry=True)

    def workers(self) -> list[dict[str, Any]]:
        """Live workers, their queues/devices and current job."""
        return _items(self.http.json("GET", "/workers", retry=True), "workers")

    def health(self) -> dict[str, Any]:
        """Liveness with database and broker checks (raises ServiceUnavailable when unhealthy)."""
        return self.http.json("GET", "/health", retry=True)


def guess_format(path: Path) -> str | None:
    """`csv`, `npz` or `idx` from a file name (`train-images-idx3-ubyte.gz` is idx), else None."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".idx") or "-idx" in name or name.endswith("ubyte"):
        return "idx"
    return None


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(body, dict):
        body = body.get("items", body.get(key, []))
    return list(body or [])
