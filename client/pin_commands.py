"""`trainyard pin ID` and `trainyard unpin ID` (`--sweep` for a sweep): retention never purges what is pinned."""

from __future__ import annotations

import argparse

from trainyard.client.client import Client
from trainyard.client.commands import Outcome


def pin(args: argparse.Namespace, client: Client) -> Outcome:
    return _set(args, client, True)


def unpin(args: argparse.Namespace, client: Client) -> Outcome:
    return _set(args, client, False)


def _set(args: argparse.Namespace, client: Client, pinned: bool) -> Outcome:
    verb = "pinned" if pinned else "unpinned"
    if args.sweep:
        sweep = client.pin_sweep(args.id, pinned)
        return Outcome(0, sweep, f"{verb} sweep {args.id}" + (": retention purges none of its trials" if pinned
                                                               else ""))
    job = client.pin(args.id, pinned).to_dict()
    text = f"{verb} job {args.id}" + (": retention never purges it" if pinned else "")
    purged = job.get("purged")
    if purged:
        text += f"\nretention already removed its {', '.join(purged['removed']) or 'nothing'} on {purged['at']}"
    return Outcome(0, job, text)


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register `pin` and `unpin`."""
    for name, handler, text in (("pin", pin, "keep a job (or with --sweep every trial of a sweep) from retention"),
                                ("unpin", unpin, "let retention purge a job (or a sweep's trials) again")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("id", metavar="ID", help="a job id (a sweep id with --sweep)")
        p.add_argument("--sweep", action="store_true", help="ID is a sweep")
        p.set_defaults(handler=handler)
