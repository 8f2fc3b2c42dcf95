"""The sweep commands: `trainyard sweep SWEEP.json [--wait]` and `trainyard sweeps list|show|wait|cancel|delete`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trainyard.client.client import Client
from trainyard.client.commands import InputError, Outcome
from trainyard.client.errors import DatasetFileError, WaitTimeout
from trainyard.client.output import table
from trainyard.client.sweep_table import LiveView, best_text, headline, sweep_rows, sweep_summary, trials_table
from trainyard.client.sweeps import Sweep


def read_request(path: str) -> dict[str, Any]:
    """The sweep request from a file, or from stdin for `-`."""
    try:
        request = json.loads(sys.stdin.read() if path == "-" else Path(path).read_text())
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise InputError(f"{path}: a sweep request is a JSON object")
    return request


def finished(client: Client, sweep: Sweep, sort: str = "trial") -> Outcome:
    """A finished sweep: every trial, then its best; exit 0 only if it succeeded."""
    trials = client.sweep_trials(sweep.id, sort=sort)
    lines = [trials_table(sweep, trials), "", headline(sweep, with_best=False)]
    if sweep.best:
        lines.append(best_text(sweep))
    if isinstance(sweep.error, dict):
        lines.append(f"error: {sweep.error.get('code')}: {sweep.error.get('message')}")
    return Outcome(0 if sweep.status == "succeeded" else 1, {**sweep.to_dict(), "trial_list": trials},
                   "\n".join(lines))


def follow(client: Client, sweep_id: str, args: argparse.Namespace) -> Outcome:
    view = None if args.quiet else LiveView()  # on stderr: --json keeps stdout to its one line
    try:
        sweep = client.wait_sweep(sweep_id, timeout=args.timeout, poll_interval=args.interval, on_update=view)
    except WaitTimeout as exc:
        sweep = client.get_sweep(sweep_id)
        outcome = finished(client, sweep)
        outcome.code = 1
        outcome.notes.append(f"trainyard: {exc}")
        return outcome
    except KeyboardInterrupt:
        return Outcome(130, {"id": sweep_id, "interrupted": True},
                       f"stopped waiting; sweep {sweep_id} goes on (trainyard sweeps wait {sweep_id} follows it again, "
                       f"trainyard sweeps cancel {sweep_id} stops it)")
    return finished(client, sweep)


def sweep_create(args: argparse.Namespace, client: Client) -> Outcome:
    def uploaded(path: str, record: dict[str, Any]) -> None:
        if not args.quiet:
            print(f"uploaded {path} as dataset {record.get('id')}", file=sys.stderr)

    base_dir = Path.cwd() if args.request == "-" else Path(args.request).parent
    try:
        sweep = client.create_sweep(read_request(args.request), base_dir=base_dir, on_upload=uploaded)
    except DatasetFileError as exc:
        raise InputError(f"{args.request}: {exc}") from exc
    started = f"started sweep {sweep.id} ({sweep.name or 'unnamed'}: {sweep.trials} trials, {sweep.parallel} at once)"
    if not args.wait:
        return Outcome(0, sweep.to_dict(), started)
    if not args.quiet:
        print(started, file=sys.stderr)
    return follow(client, sweep.id, args)


def sweeps_list(args: argparse.Namespace, client: Client) -> Outcome:
    sweeps = list(client.list_sweeps(status=args.status, limit=args.limit))
    text = table(sweep_rows(sweeps), ["id", "name", "status", "trials", "metric", "best", "created"])
    return Outcome(0, {"items": [s.to_dict() for s in sweeps]}, text if sweeps else "no sweeps")


def sweeps_show(args: argparse.Namespace, client: Client) -> Outcome:
    sweep = client.get_sweep(args.id)
    trials = client.sweep_trials(args.id, sort=args.sort)
    return Outcome(0, {**sweep.to_dict(), "trial_list": trials},
                   sweep_summary(sweep) + "\n\n" + trials_table(sweep, trials))


def sweeps_wait(args: argparse.Namespace, client: Client) -> Outcome:
    return follow(client, args.id, args)


def sweeps_cancel(args: argparse.Namespace, client: Client) -> Outcome:
    sweep = client.cancel_sweep(args.id)
    return Outcome(0, sweep.to_dict(), f"sweep {sweep.id}: {sweep.status}")


def sweeps_delete(args: argparse.Namespace, client: Client) -> Outcome:
    client.delete_sweep(args.id)
    return Outcome(0, {"id": args.id, "deleted": True}, f"deleted sweep {args.id} and its trials")


def _follow_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop waiting after this long (exit 1)")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="how often the table is refreshed (default 1)")
    p.add_argument("--quiet", action="store_true", help="no live table; print only the result")


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register `sweep` and `sweeps`."""
    p = sub.add_parser("sweep", parents=[common], help="start a hyperparameter sweep (- reads stdin)")
    p.add_argument("request", metavar="SWEEP.json")
    p.add_argument("--wait", action="store_true",
                   help="show a live table of the trials until the sweep ends; exit 0 only if it succeeded")
    _follow_options(p)
    p.set_defaults(handler=sweep_create)
    p = sub.add_parser("sweeps", help="list, show, wait for, cancel or delete sweeps")
    sw = p.add_subparsers(dest="sweeps_command", metavar="list|show|wait|cancel|delete", required=True)
    s = sw.add_parser("list", parents=[common], help="your sweeps, newest first")
    s.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    s.add_argument("--limit", type=int, default=20, help="at most this many sweeps (default 20)")
    s.set_defaults(handler=sweeps_list)
    s = sw.add_parser("show", parents=[common], help="one sweep and its trials")
    s.add_argument("id")
    s.add_argument("--sort", choices=["trial", "objective"], default="trial",
                   help="trials by number (default) or best objective first")
    s.set_defaults(handler=sweeps_show)
    s = sw.add_parser("wait", parents=[common], help="follow a sweep with the live table; exit 0 if it succeeded")
    s.add_argument("id")
    _follow_options(s)
    s.set_defaults(handler=sweeps_wait)
    for name, handler, text in (("cancel", sweeps_cancel, "stop a sweep: its queued and running trials too"),
                                ("delete", sweeps_delete, "delete a finished sweep and its trials")):
        s = sw.add_parser(name, parents=[common], help=text)
        s.add_argument("id")
        s.set_defaults(handler=handler)
