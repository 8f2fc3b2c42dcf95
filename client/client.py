"""The Python client for trainyard's HTTP API (DESIGN §6): jobs, datasets, catalog, workers and sweeps."""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from trainyard.client.errors import ApiError, DatasetFileError
from trainyard.client.models import Job
from trainyard.client.sweeps import SweepCalls
from trainyard.client.transport import RetryCallback, Transport
from trainyard.client.waiting import ProgressArg, Waiter

DEFAULT_URL = "http://127.0.0.1:8000"


def token_file() -> Path:
    """Where the client reads a token when TRAINYARD_TOKEN is unset: $TRAINYARD_HOME/token (default ./var/token)."""
    return (Path(os.environ.get("TRAINYARD_HOME") or "var") / "token").resolve()


def find_token() -> tuple[str | None, str]:
    """`(token, where it came from)`, or `(None, where the client looked and what it found)`.

    TRAINYARD_TOKEN, else the last line of $TRAINYARD_HOME/token (TRAINYARD_HOME defaults to ./var).
    """
    env = os.environ.get("TRAINYARD_TOKEN")
    if env and env.strip():
        return env.strip(), "TRAINYARD_TOKEN"
    looked = ["TRAINYARD_TOKEN is " + ("empty" if env is not None else "not set")]
    path = token_file()
    where = (f"{path} ($TRAINYARD_HOME/token)" if os.environ.get("TRAINYARD_HOME")
             else f"{path} ($TRAINYARD_HOME/token; TRAINYARD_HOME is not set, so ./var)")
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        looked.append(f"{where} was not found")
    except (OSError, UnicodeDecodeError) as exc:
        looked.append(f"{where} could not be read ({getattr(exc, 'strerror', None) or exc})")
    else:
        if lines:
            return lines[-1], str(path)
        looked.append(f"{where} is empty")
    return None, " and ".join(looked)


def default_token() -> str | None:
    """TRAINYARD_TOKEN, else the last line of $TRAINYARD_HOME/token (TRAINYARD_HOME defaults to ./var)."""
    return find_token()[0]


class Client(SweepCalls):
    """One service and one token; every method raises an `ApiError` subclass on an error answer.

    Args:
        url: the service's address (default TRAINYARD_URL, else http://127.0.0.1:8000).
        token: the bearer token (default TRAINYARD_TOKEN, else $TRAINYARD_HOME/token).
        retries, backoff, max_backoff: how safe calls are retried on connection errors and 502/503/504.
        on_retry: called as `on_retry(attempt, max_attempts, reason, delay)` before each retry's wait
            (retry `attempt` of at most `max_attempts`, in `delay` seconds); the library itself prints nothing.

    `token_source` says where the token came from ("token argument", "TRAINYARD_TOKEN" or the token
    file's path) or, when there is none, where the client looked.
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0,
                 retries: int = 5, backoff: float = 0.5, max_backoff: float = 8.0,
                 on_retry: RetryCallback | None = None):
        self.url = url or os.environ.get("TRAINYARD_URL") or DEFAULT_URL
        if token is not None:
            self.token: str | None = token.strip() or None
            self.token_source = "token argument" if self.token else "the token argument is empty"
        else:
            self.token, self.token_source = find_token()
        self.http = Transport(self.url, self.token, timeout=timeout, retries=retries, backoff=backoff,
                              max_backoff=max_backoff, on_retry=on_retry)

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self.http.session.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- jobs ---------------------------------------------------------------------------

    def submit(self, spec: dict[str, Any] | str | os.PathLike, *, idempotency_key: str | None = None,
               base_dir: str | os.PathLike | None = None,
               on_upload: Callable[[str, dict[str, Any]], None] | None = None) -> Job:
        """Submit a spec (a dict or a JSON file's path); retried safely under one Idempotency-Key.

        A local `"dataset": {"path": FILE}` is uploaded first (see `upload_local_dataset`) and
        `on_upload(FILE, upload record)` called; a relative FILE is relative to the spec file, or to
        `base_dir` (default the working directory) for a dict. If the service refuses the spec, that
        upload is deleted again.
        """
        if not isinstance(spec, dict):
            spec_path = Path(spec)
            spec = json.loads(spec_path.read_text())
            base_dir = spec_path.parent if base_dir is None else base_dir
        local = spec["dataset"].get("path") if isinstance(spec.get("dataset"), dict) else None
        spec, uploaded = self.upload_local_dataset(spec, base_dir)
        if uploaded is not None and on_upload is not None:
            on_upload(str(local), uploaded)
        key = idempotency_key or str(uuid.uuid4())
        try:
            return Job(self.http.json("POST", "/jobs", json=spec, retry=True, headers={"Idempotency-Key": key}))
        except ApiError as exc:
            if uploaded is not None and not uploaded.get("reused") and 400 <= exc.status < 500:
                # refused: the upload made for it is unused (one it reused stays)
                with contextlib.suppress(ApiError):
                    self.delete_dataset(uploaded["id"])
            raise

    def upload_local_dataset(self, spec: dict[str, Any], base_dir: str | os.PathLike | None = None
                             ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """`(spec, upload record)`: a spec whose `dataset` names a local `path`, with that file uploaded.

        The service never opens a file a client names, so the file is uploaded (name: its file name;
        format: its extension; `target` and `task` from the dataset options; an MNIST-named IDX images
        file takes its labels file from beside it) and the returned copy of the spec has
        `"dataset": {"id": <the upload's id>, ...the other options}`. A relative path is relative to
        `base_dir` (default the working directory). A spec without a `path` comes back as it is, with
        None. Raises `DatasetFileError` for a file it cannot send, an `ApiError` if the upload is refused.
        """
        dataset = spec.get("dataset")
        if not isinstance(dataset, dict) or dataset.get("path") is None:
            return spec, None
        raw = dataset["path"]
        if not isinstance(raw, str) or not raw.strip():
            raise DatasetFileError(f"dataset.path must name a file, not {raw!r}")
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = Path(base_dir if base_dir is not None else Path.cwd()) / path
        fmt = guess_format(path)
        if fmt is None:
            raise DatasetFileError(f"dataset.path {raw!r}: cannot tell the dataset format from the file name; "
                                   "use .csv, .npz, or MNIST-style IDX names (…-images-idx3-ubyte[.gz])")
        try:
            with open(path, "rb"):
                pass
            labels = idx_labels_path(path) if fmt == "idx" else None
        except OSError as exc:
            raise DatasetFileError(f"dataset.path {raw!r}: cannot read {path} ({exc.strerror or exc})") from exc
        options = {k: v for k in ("target", "task") if isinstance(v := dataset.get(k), str)}
        record = None if labels is not None else self._uploaded_before(path, fmt, options)
        if record is None:
            record = self.upload_dataset(path, name=path.stem, format=fmt, labels=labels, **options)
        rest = {k: v for k, v in dataset.items() if k not in ("path", "id")}
        return {**spec, "dataset": {"id": record["id"], **rest}}, record

    def _uploaded_before(self, path: Path, fmt: str, options: dict[str, str]) -> dict[str, Any] | None:
        """The caller's dataset with this file's bytes (sha256), format, name and the same target and task, marked
        `"reused": True` — so submitting one spec twice uploads its file once — or None."""
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        for record in self.list_datasets():
            if (record.get("sha256") == digest.hexdigest() and record.get("format") == fmt
                    and record.get("name") == path.stem
                    and all(record.get(k) == v for k, v in options.items())
                    and ("target" in options or fmt != "csv" or record.get("target") == _last_column(path))):
                return {**record, "reused": True}
        return None

    def get(self, job_id: str) -> Job:
        """One job's current record."""
        return Job(self.http.json("GET", f"/jobs/{job_id}", retry=True))

    def list(self, *, status: str | None = None, backend: str | None = None, name: str | None = None,
             limit: int | None = None, page_size: int | None = None) -> Iterator[Job]:
        """Summaries of the caller's jobs (no spec: `get` has it all), newest first, following `next_cursor` until
        `limit` jobs (default all)."""
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

    def pin(self, job_id: str, pinned: bool = True) -> Job:
        """Pin the job (retention never purges it), or unpin it with `pinned=False`; the job afterwards."""
        return Job(self.http.json("POST" if pinned else "DELETE", f"/jobs/{job_id}/pin", retry=True))

    def pin_sweep(self, sweep_id: str, pinned: bool = True) -> dict[str, Any]:
        """Pin the sweep (retention purges none of its trials), or unpin it; the sweep afterwards."""
        return self.http.json("POST" if pinned else "DELETE", f"/sweeps/{sweep_id}/pin", retry=True)

    def history(self, job_id: str, since: int | None = None) -> list[dict[str, Any]]:
        """Every epoch's row so far (or those after epoch `since`), following the service's pages."""
        rows: list[dict[str, Any]] = []
        params = {"since": since} if since is not None else {}
        while True:
            page = self.http.json("GET", f"/jobs/{job_id}/history", params=params, retry=True)
            rows += page.get("epochs", [])
            after = page.get("next_since")
            # Each page must move forward: a service that does not page (no `has_more`) ends the loop.
            if not page.get("has_more") or not isinstance(after, int) or after <= params.get("since", 0):
                return rows
            params["since"] = after

    def download_model(self, job_id: str, path: str | os.PathLike | None = None, format: str = "native") -> Path:
        """Save the trained model file to `path` (written whole, then renamed into place).

        `format`: `native` (the backend's own file: `.npz`, `.skops` or `.keras`) or `onnx` (one ONNX
        graph, `.onnx`). Without `path` the file is `<job id>.<extension of the server's file name>` in
        the working directory.
        """
        params = {"format": format} if format != "native" else None
        with self.http.request("GET", f"/jobs/{job_id}/model", params=params, retry=True, stream=True,
                               headers={"Accept": "*/*"}) as response:
            target = Path(path) if path is not None else Path(f"{Path(job_id).name}{model_suffix(response)}")
            if target.is_dir() or not target.parent.is_dir():  # say so of the file asked for, not of its .part
                if target.is_dir():
                    raise IsADirectoryError(errno.EISDIR, "Is a directory; give a file name", str(target))
                raise FileNotFoundError(errno.ENOENT, f"No such file or directory (folder {str(target.parent)!r} "
                                                      "does not exist)", str(target))
            partial = target.with_name(target.name + ".part")
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
        """Liveness with database and broker checks (raises ServiceUnavailable when unhealthy).

        Connection errors and gateway errors are retried; a 503 is the service's own answer, not retried.
        """
        return self.http.json("GET", "/health", retry=True, retry_statuses=frozenset({502, 504}))


def guess_format(path: Path) -> str | None:
    """`csv`, `npz` or `idx` from a file name (`train-images-idx3-ubyte.gz` is idx), else None.

    As `trainyard run` reads a spec's path: `.csv[.gz]` csv, `.npz` npz, `.idx`, `…ubyte` or another `.gz` idx.
    """
    full = path.name.lower()
    name = full.removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".idx") or "-idx" in name or name.endswith("ubyte") or full.endswith(".gz"):
        return "idx"
    return None


IDX_IMAGES, IDX_LABELS = "images-idx3-ubyte", "labels-idx1-ubyte"  # MNIST's names pair the two files


def idx_labels_path(images: Path) -> Path:
    """The labels file beside an MNIST-named images file (`train-images-idx3-ubyte[.gz]` → `train-labels-…`)."""
    stem = images.name.removesuffix(".gz")
    for separator in ("-", "."):
        images_part = IDX_IMAGES.replace("-idx", separator + "idx")
        if stem.endswith(images_part):
            labels = stem.removesuffix(images_part) + IDX_LABELS.replace("-idx", separator + "idx")
            for candidate in (labels, labels + ".gz"):
                if (images.parent / candidate).is_file():
                    return images.parent / candidate
            raise DatasetFileError(f"{images}: its labels file {labels}[.gz] is not in {images.parent}")
    raise DatasetFileError(f"{images}: an IDX images file must be named like train-{IDX_IMAGES}[.gz] "
                           f"so its labels file (train-{IDX_LABELS}[.gz]) can be found next to it")


def model_suffix(response: Any) -> str:
    """`.npz`, `.skops` or `.keras` from the answer's Content-Disposition file name (`.model` if it names none)."""
    disposition = response.headers.get("Content-Disposition") or ""
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition, re.IGNORECASE)
    suffix = Path(match.group(1).strip()).suffix if match else ""
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,10}", suffix) else ".model"


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(body, dict):
        body = body.get("items", body.get(key, []))
    return list(body or [])


def _last_column(path: Path) -> str | None:
    """A CSV file's last header name (the target the service takes when none is named), or None."""
    import gzip

    try:
        with (gzip.open if path.name.lower().endswith(".gz") else open)(path, "rt", newline="") as handle:
            header = next(csv.reader([handle.readline()]), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return header[-1].strip() if header else None
