"""The dataset, catalog, workers and health commands."""

from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path
from typing import Any

from trainyard.client.client import Client
from trainyard.client.commands import InputError, Outcome
from trainyard.client.errors import ServiceUnavailable, ValidationFailed
from trainyard.client.output import cell, key_values, table

DATASET_COLUMNS = ["id", "name", "task", "n_samples", "n_features", "n_classes", "size_bytes"]


def csv_header(path: str) -> list[str] | None:
    """A CSV file's column names (its first row), or None when it is not a readable CSV file."""
    if not path.lower().endswith((".csv", ".csv.gz", ".txt")):
        return None
    try:
        opener = gzip.open if path.lower().endswith(".gz") else open
        with opener(path, "rt", newline="", errors="replace") as handle:
            return next(csv.reader([handle.readline()]), None)
    except OSError:
        return None


def datasets_upload(args: argparse.Namespace, client: Client) -> Outcome:
    for path in (args.file, args.labels):  # the same missing file is bad usage (2) here as in submit and predict
        if path is not None and not Path(path).is_file():
            raise InputError(f"{path}: {'is a folder' if Path(path).is_dir() else 'no such file'}")
    header = csv_header(args.file)
    default = f"the target column defaults to the last one, {header[-1]!r}" if header and args.target is None else ""
    try:
        record = client.upload_dataset(args.file, name=args.name, format=args.format, target=args.target,
                                       task=args.task, labels=args.labels)
    except ValidationFailed as exc:
        if default and len(header) > 1 and "--target" not in exc.describe():  # (a server that says it itself)
            exc.errors.append({"loc": "target", "msg": f"{default}; name the label column with --target COLUMN "
                                                       f"(one of {', '.join(header)})"})
        if header and len(header) == 1 and ";" in header[0] and "separated" not in exc.describe():
            exc.errors.append({"loc": "file", "msg": "the header has one column with ';' in it: trainyard reads "
                                                     "comma-separated files; convert it to commas"})
        raise
    outcome = Outcome(0, record, key_values((k, cell(record.get(k))) for k in DATASET_COLUMNS + ["target", "sha256"]))
    if default:
        outcome.notes.append(f"trainyard datasets upload: {default}; --target COLUMN picks another")
    return outcome


def datasets_list(args: argparse.Namespace, client: Client) -> Outcome:
    items = client.list_datasets()
    return Outcome(0, {"items": items}, table(items, DATASET_COLUMNS) if items else "no datasets")


def datasets_show(args: argparse.Namespace, client: Client) -> Outcome:
    record = client.get_dataset(args.id)
    return Outcome(0, record, key_values((k, cell(v)) for k, v in record.items()))


def datasets_delete(args: argparse.Namespace, client: Client) -> Outcome:
    client.delete_dataset(args.id)
    return Outcome(0, {"id": args.id, "deleted": True}, f"deleted dataset {args.id}")


def describe(details: Any) -> str:
    """Parameters and defaults on one line: `alpha=0.01`, `units(required=yes)`."""
    if isinstance(details, dict):
        return ", ".join(f"{k}({describe(v)})" if isinstance(v, dict) else f"{k}={describe(v)}"
                         for k, v in details.items())
    return f"{details:g}" if isinstance(details, float) else cell(details)


def _is_flat(details: Any) -> bool:
    return not isinstance(details, dict) or all(isinstance(v, (str, int, float, bool, type(None))) or
                                                (isinstance(v, dict) and _is_flat(v)) for v in details.values())


def catalog_text(catalog: dict[str, Any]) -> str:
    """Each section's names; simple parameters on the name's line, longer descriptions one field a line."""
    lines = []
    for section, entries in catalog.items():
        lines.append(f"{section}:")
        if isinstance(entries, dict):
            named = list(entries.items())
        elif isinstance(entries, list):
            named = [((e.get("name"), {k: v for k, v in e.items() if k != "name"}) if isinstance(e, dict)
                      else (e, None)) for e in entries]
        else:
            named = [(entries, None)]
        width = max((len(str(n)) for n, _ in named), default=0)
        for name, details in named:
            if not details:
                lines.append(f"  {name}")
            elif _is_flat(details):
                lines.append(f"  {str(name).ljust(width)}  {describe(details)}")
            else:
                lines.append(f"  {name}")
                lines.extend(f"      {key}: {describe(value) if isinstance(value, dict) else _joined(value)}"
                             for key, value in details.items())
    return "\n".join(lines)


def _joined(value: Any) -> str:
    return "; ".join(cell(v) for v in value) if isinstance(value, list) and any(
        isinstance(v, str) and " " in v for v in value) else cell(value)


def catalog(args: argparse.Namespace, client: Client) -> Outcome:
    data = client.catalog()
    return Outcome(0, data, catalog_text(data))


def worker_rows(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The workers table: one `current_jobs` column (the API sends both `current_job` and `current_jobs`)."""
    rows = []
    for worker in items:
        row = {k: v for k, v in worker.items() if k not in ("current_job", "current_jobs")}
        jobs = worker.get("current_jobs")
        if jobs is None:
            jobs = [worker["current_job"]] if worker.get("current_job") else []
        row["current_jobs"] = jobs
        rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row if k != "current_jobs"))
    at = columns.index("hostname") if "hostname" in columns else len(columns)  # jobs before host, pid, times
    return rows, columns[:at] + ["current_jobs"] + columns[at:]


def workers(args: argparse.Namespace, client: Client) -> Outcome:
    items = client.workers()
    if not items:
        return Outcome(0, {"items": []}, "no live workers")
    rows, columns = worker_rows(items)
    return Outcome(0, {"items": items}, table(rows, columns))


def health_text(data: dict[str, Any]) -> str:
    """`status  ok`, then one `name  ok` (or `name  down: why`) line per check."""
    pairs = [("status", cell(data.get("status")))]
    checks = data.get("checks")
    for name, check in (checks.items() if isinstance(checks, dict) else ()):
        if isinstance(check, dict):
            ok, detail = check.get("ok"), check.get("detail")
            state = "ok" if ok else "down"
            pairs.append((name, state if not detail or detail == state else f"{state}: {detail}"))
        else:
            pairs.append((name, cell(check)))
    pairs += [(k, cell(v)) for k, v in data.items() if k not in ("status", "checks")]
    return key_values(pairs)


def health(args: argparse.Namespace, client: Client) -> Outcome:
    try:
        data = client.health()
    except ServiceUnavailable as exc:
        if not isinstance(exc.problem.get("checks"), dict):
            raise
        data = {"status": "unavailable", "checks": exc.problem["checks"]}
        return Outcome(1, data, health_text(data))
    return Outcome(0, data, health_text(data))


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the dataset and service-information commands."""
    p = sub.add_parser("datasets", help="upload, list, show or delete datasets")
    ds = p.add_subparsers(dest="datasets_command", metavar="upload|list|show|delete", required=True)
    u = ds.add_parser("upload", parents=[common], help="upload a CSV, NPZ or IDX file")
    u.add_argument("file", help="the data file: .csv (comma-separated, a header row), .npz (arrays X and y) or "
                                "IDX images (with --labels)")
    u.add_argument("--name", help="the dataset's name (default: the file name without its extension)")
    u.add_argument("--format", choices=["csv", "npz", "idx"], help="default: from the file's extension")
    u.add_argument("--target", help="the CSV's label column (default: its last column)")
    u.add_argument("--task", choices=["classification", "regression"])
    u.add_argument("--labels", metavar="FILE", help="the IDX labels file that goes with FILE's images")
    u.set_defaults(handler=datasets_upload)
    ds.add_parser("list", parents=[common], help="your datasets").set_defaults(handler=datasets_list)
    for name, handler in (("show", datasets_show), ("delete", datasets_delete)):
        d = ds.add_parser(name, parents=[common], help=f"{name} one dataset")
        d.add_argument("id", help="the dataset's id (from upload or `datasets list`)")
        d.set_defaults(handler=handler)
    sub.add_parser("catalog", parents=[common], help="what a spec can name").set_defaults(handler=catalog)
    sub.add_parser("workers", parents=[common], help="live workers").set_defaults(handler=workers)
    sub.add_parser("health", parents=[common], help="service health").set_defaults(handler=health)
