"""The job commands: submit, status, wait, cancel, delete, list, history, download, predict."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from trainyard.client.client import Client
from trainyard.client.errors import ApiError, DatasetFileError, WaitTimeout
from trainyard.client.models import Job
from trainyard.client.output import job_rows, job_summary, table
from trainyard.client.plot import FORMATS, PlotUnavailable, save_history_plot


@dataclass
class Outcome:
    """What a command produced: its exit code, the object `--json` prints, the text people read."""

    code: int = 0
    data: Any = None
    text: str = ""
    notes: list[str] = field(default_factory=list)  # extra lines for stderr


class InputError(Exception):
    """A file or value named on the command line cannot be read (exit code 2, like other usage errors)."""


def job_outcome(job: Job, waited: bool) -> Outcome:
    """A job's summary; after waiting, the exit code says whether it succeeded."""
    code = (0 if job.succeeded else 1) if waited else 0
    return Outcome(code, job.to_dict(), job_summary(job))


def read_spec(path: str) -> dict[str, Any]:
    """The spec document from a file, or from stdin for `-`."""
    try:
        spec = json.loads(sys.stdin.read() if path == "-" else Path(path).read_text())
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise InputError(f"{path}: a job spec is a JSON object")
    return spec


def wait_for(client: Client, job_id: str, args: argparse.Namespace) -> Outcome:
    try:
        job = client.wait(job_id, timeout=args.timeout, progress=not args.quiet)
    except WaitTimeout as exc:
        job = client.get(job_id)
        outcome = job_outcome(job, waited=True)
        outcome.notes.append(f"trainyard: {exc}; it is still {job.status}")
        return outcome
    except KeyboardInterrupt:
        return Outcome(130, {"id": job_id, "interrupted": True},
                       f"stopped waiting; job {job_id} goes on (trainyard cancel {job_id} stops it)")
    return job_outcome(job, waited=True)


def submit(args: argparse.Namespace, client: Client) -> Outcome:
    def uploaded(path: str, record: dict[str, Any]) -> None:
        if not args.quiet:
            print(f"{path}: reusing dataset {record.get('id')}, uploaded before with the same bytes" if
                  record.get("reused") else f"uploaded {path} as dataset {record.get('id')}", file=sys.stderr)

    base_dir = Path.cwd() if args.spec == "-" else Path(args.spec).parent  # a data path is relative to the spec
    try:
        job = client.submit(read_spec(args.spec), base_dir=base_dir, on_upload=uploaded)
    except DatasetFileError as exc:
        raise InputError(f"{args.spec}: {exc}") from exc
    if not args.wait:
        return Outcome(0, job.to_dict(), f"submitted job {job.id} ({job.name or 'unnamed'}, {job.status})")
    if not args.quiet:
        print(f"submitted job {job.id} ({job.name or 'unnamed'}); waiting", file=sys.stderr)
    return wait_for(client, job.id, args)


def status(args: argparse.Namespace, client: Client) -> Outcome:
    return job_outcome(client.get(args.id), waited=False)


def wait(args: argparse.Namespace, client: Client) -> Outcome:
    return wait_for(client, args.id, args)


def cancel(args: argparse.Namespace, client: Client) -> Outcome:
    job = client.cancel(args.id)
    note = "cancelled" if job.status == "cancelled" else f"cancellation requested (now {job.status})"
    return Outcome(0, job.to_dict(), f"job {job.id}: {note}")


def delete(args: argparse.Namespace, client: Client) -> Outcome:
    client.delete(args.id)
    return Outcome(0, {"id": args.id, "deleted": True}, f"deleted job {args.id}")


def list_jobs(args: argparse.Namespace, client: Client) -> Outcome:
    jobs = list(client.list(status=args.status, backend=args.backend, name=args.name, limit=args.limit))
    text = table(job_rows(jobs), ["id", "name", "status", "backend", "device", "progress", "created"])
    return Outcome(0, {"items": [j.to_dict() for j in jobs]}, text if jobs else "no jobs")


def history_columns(rows: list[dict[str, Any]]) -> list[str]:
    """epoch, loss, training metrics, val_loss, validation metrics, time."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    train = [k for k in keys if k not in ("epoch", "time", "loss") and not k.startswith("val_")]
    val = [k for k in keys if k.startswith("val_")]
    val.sort(key=lambda k: k != "val_loss")
    return ["epoch"] + (["loss"] if "loss" in keys else []) + train + val + (["time"] if "time" in keys else [])


def thin(rows: list[dict[str, Any]], at_most: int) -> list[dict[str, Any]]:
    """At most `at_most` rows, evenly spaced, always keeping the first and the last."""
    if len(rows) <= at_most:
        return rows
    step = (len(rows) - 1) / (at_most - 1)
    return [rows[round(i * step)] for i in range(at_most)]


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more (`list --limit 0` is refused, as the API refuses it)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def history(args: argparse.Namespace, client: Client) -> Outcome:
    if args.plot and Path(args.plot).suffix.lower().lstrip(".") not in FORMATS:  # never PNG bytes in a .jpg
        raise InputError(f"--plot {args.plot}: the file name must end in .png, .svg or .pdf (the format follows it)")
    rows = client.history(args.id, since=args.since)
    shown = rows if args.all else thin(rows, 40)
    text = table(shown, history_columns(rows)) if rows else "no epochs yet"
    outcome = Outcome(0, {"epochs": rows}, text)
    if len(shown) < len(rows) and not args.json:  # --json prints every row: nothing was left out
        outcome.notes.append(f"showing {len(shown)} of {len(rows)} epochs (--all shows every one)")
    if args.plot:
        job = client.get(args.id)
        if not rows:
            if args.since is not None:
                why = f"job {job.id} has no epochs after epoch {args.since}"
            elif job.done:
                why = f"job {job.id} {job.status} without finishing an epoch"
            else:
                why = f"job {job.id} is {job.status} and has no epochs yet; plot it once it has run"
            message = f"nothing to plot: {why}; {args.plot} was not written"
            outcome.code, outcome.text = 1, ""
            outcome.data["error"] = {"status": 0, "title": "nothing to plot", "detail": message}
            outcome.notes.append(f"trainyard history: {message}")
            return outcome
        try:
            save_history_plot(rows, args.plot, title=f"{job.name or ''} {job.id}".strip())
        except PlotUnavailable as exc:
            outcome.code, outcome.text = 1, ""
            outcome.data["error"] = {"status": 0, "title": "plotting unavailable", "detail": str(exc)}
            outcome.notes.append(f"trainyard history: {exc}; {args.plot} was not written")
            return outcome
        outcome.data["plot"] = str(args.plot)
        outcome.notes.append(f"wrote {args.plot}")
    return outcome


def download(args: argparse.Namespace, client: Client) -> Outcome:
    path = client.download_model(args.id, args.output, format=args.format)
    size = path.stat().st_size
    return Outcome(0, {"id": args.id, "path": str(path), "size_bytes": size}, f"wrote {path} ({size} bytes)")


def parse_inputs(value: str, columns: Callable[[], int | None] = lambda: None) -> list[list[float]]:
    """`--inputs`: a JSON array (or {"inputs": ...}), a .json file, or a .csv file (a header row is skipped).

    `columns` is asked, only when a CSV file is read, how many features the model takes (None: unknown).
    """
    path = Path(value)
    if value.lower().endswith(".csv") or (path.suffix.lower() == ".csv" and path.exists()):
        return csv_rows(path.read_text(), columns())
    from_file = path.suffix.lower() == ".json" and path.exists()
    text = path.read_text() if from_file else value
    example = "e.g. '[[0,1],[1,1]]' for two rows of two features"
    try:
        data = json.loads(text)
    except ValueError as exc:
        if from_file:
            raise ValueError(f"{value} is not JSON: {exc}") from exc
        raise ValueError(f"{value!r} is not a JSON array: give rows of features as JSON ({example}), or a .json "
                         "or .csv file") from exc
    if isinstance(data, dict):
        data = data.get("inputs")
    if not isinstance(data, list):
        raise ValueError(f"give a JSON array of rows ({example}), a .json file or a .csv file")
    if data and not any(isinstance(row, list) for row in data):  # one flat list: `[0,1]`
        # One row of the model's features, unless the model takes one feature (then one value per row).
        return [[v] for v in data] if columns() == 1 else [data]
    return [row if isinstance(row, list) else [row] for row in data]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def csv_rows(text: str, n_features: int | None = None) -> list[list[float]]:
    """Feature rows from CSV text; a ValueError names the row (1-based, after any header) and column.

    A first row with no number in it is a header. Blank lines are skipped, as the upload validator does.
    """
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    header = bool(rows) and all(_number(cell) is None for cell in rows[0])
    body = rows[1:] if header else rows
    if not body:
        raise ValueError("the CSV file has no data rows" + (" after its header" if header else ""))
    after = " (after the header)" if header else ""
    takes = f"; the model takes {n_features}" if n_features else ""
    width = n_features or len(body[0])
    out = []
    for i, row in enumerate(body, start=1):
        if len(row) != width:
            if n_features:
                raise ValueError(f"row {i}{after} has {len(row)} columns{takes}")
            raise ValueError(f"row {i}{after} has {len(row)} columns but row 1 has {width}")
        values = []
        for j, cell in enumerate(row, start=1):
            value = _number(cell)
            if not cell.strip():
                raise ValueError(f"row {i}{after}, column {j}: missing value")
            if value is None:
                raise ValueError(f"row {i}{after}, column {j}: {cell.strip()!r} is not a number")
            if not math.isfinite(value):
                raise ValueError(f"row {i}{after}, column {j}: {cell.strip()!r} is not a finite number")
            values.append(value)
        out.append(values)
    return out


def model_columns(client: Client, job_id: str) -> int | None:
    """How many features a job's model takes, from its spec's dataset (an upload's record or the catalog)."""
    try:
        dataset = client.get(job_id).spec.get("dataset") or {}
        if dataset.get("id"):
            n = client.get_dataset(dataset["id"]).get("n_features")
        elif dataset.get("builtin"):
            n = ((client.catalog().get("datasets") or {}).get(dataset["builtin"]) or {}).get("n_features")
        else:
            return None
    except (ApiError, AttributeError, TypeError):
        return None
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


def predict(args: argparse.Namespace, client: Client) -> Outcome:
    try:
        inputs = parse_inputs(args.inputs, lambda: model_columns(client, args.id))
    except (OSError, ValueError) as exc:
        raise InputError(f"--inputs {args.inputs}: {exc}" if args.inputs.lower().endswith(".csv")
                         else f"--inputs: {exc}") from exc
    answer = client.predict(args.id, inputs)
    predictions = answer.get("predictions", [])
    probabilities = answer.get("probabilities") or [None] * len(predictions)
    rows = [{"input": ",".join(f"{v:g}" for v in inp), "prediction": pred,
             "probabilities": ",".join(f"{p:.4g}" for p in prob) if prob else None}
            for inp, pred, prob in zip(inputs, predictions, probabilities)]
    columns = ["input", "prediction"] + (["probabilities"] if answer.get("probabilities") else [])
    return Outcome(0, answer, table(rows, columns))


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the job commands."""
    p = sub.add_parser("submit", parents=[common], help="submit a job spec (- reads stdin)")
    p.add_argument("spec", metavar="SPEC", help="the job spec file (JSON), or - for stdin; a local dataset path "
                                                "in it is uploaded first, relative to the spec file")
    _wait_options(p, "--wait", "follow the job until it finishes; exit 0 only if it succeeded")
    p.set_defaults(handler=submit)
    p = sub.add_parser("status", parents=[common], help="show one job")
    p.add_argument("id", help="the job's id (from submit or list)")
    p.set_defaults(handler=status)
    p = sub.add_parser("wait", parents=[common], help="follow a job; exit 0 only if it succeeded")
    p.add_argument("id", help="the job's id (from submit or list)")
    _wait_options(p)
    p.set_defaults(handler=wait)
    for name, handler, text in (("cancel", cancel, "cancel a queued or running job"),
                                ("delete", delete, "delete a finished job and its artifacts")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("id", help="the job's id (from submit or list)")
        p.set_defaults(handler=handler)
    p = sub.add_parser("list", parents=[common], help="your jobs, newest first")
    p.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    p.add_argument("--backend", choices=["numpy", "sklearn", "keras"])
    p.add_argument("--name", help="only jobs with exactly this name")
    p.add_argument("--limit", type=positive_int, default=20, help="at most this many jobs, 1 or more (default 20)")
    p.set_defaults(handler=list_jobs)
    p = sub.add_parser("history", parents=[common], help="per-epoch loss and metrics")
    p.add_argument("id", help="the job's id (from submit or list)")
    p.add_argument("--since", type=int, metavar="EPOCH", help="only epochs after this one")
    p.add_argument("--all", action="store_true", help="print every epoch (default: at most 40 rows)")
    p.add_argument("--plot", metavar="FILE.png", help="draw the loss and metric curves into a PNG (an SVG or PDF "
                   "if FILE ends so); needs matplotlib: pip install 'trainyard[plot]'")
    p.set_defaults(handler=history)
    p = sub.add_parser("download", parents=[common], help="download the trained model file")
    p.add_argument("id", help="the job's id (from submit or list)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write it (default: JOB_ID plus the model's extension, e.g. JOB_ID.npz)")
    p.add_argument("--format", choices=("native", "onnx"), default="native",
                   help="native (default): the backend's own file (.npz, .skops or .keras); onnx: one ONNX graph "
                        "(.onnx) that onnxruntime runs, scaling inside")
    p.set_defaults(handler=download)
    p = sub.add_parser("predict", parents=[common], help="predict with a trained job's model")
    p.add_argument("id", help="the job's id (from submit or list)")
    p.add_argument("--inputs", required=True, metavar="JSON|FILE",
                   help="rows of raw features: a JSON array, a .json file or a .csv file")
    p.set_defaults(handler=predict)


def _wait_options(p: argparse.ArgumentParser, flag: str | None = None, text: str = "") -> None:
    if flag:
        p.add_argument(flag, action="store_true", help=text)
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop waiting after this long (exit 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
