"""The `trainyard` command: client commands over HTTP, and thin wrappers around the service commands."""

from __future__ import annotations

import argparse
import os
import sys

from trainyard.client import commands, pin_commands, resources, service, sweep_commands
from trainyard.client.client import Client
from trainyard.client.commands import InputError
from trainyard.client.errors import ApiError, Unauthorized
from trainyard.client.output import dumps, problem_json, problem_text


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="service address (default $TRAINYARD_URL or http://127.0.0.1:8000)")
    common.add_argument("--token", help="API token (default $TRAINYARD_TOKEN or $TRAINYARD_HOME/token)")
    common.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    parser = argparse.ArgumentParser(
        prog="trainyard", description="Train neural networks from a JSON job spec, locally or on a service.",
        epilog="exit codes: 0 success (for wait: the job succeeded), 1 failure, 2 bad usage")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parsers(sub, common)
    resources.add_parsers(sub, common)
    sweep_commands.add_parsers(sub, common)
    pin_commands.add_parsers(sub, common)
    service.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (0 ok, 1 failed, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return exc.code if isinstance(exc.code, int) else 2
    if getattr(args, "service", False):
        return args.handler(args)
    try:
        return run_client_command(args)
    except BrokenPipeError:  # `trainyard list | head`: the reader left; don't print a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def print_retry(attempt: int, max_attempts: int, reason: str, delay: float) -> None:
    """The CLI's `on_retry`: say why it is waiting instead of sitting silent."""
    print(f"trainyard: {reason}; retrying in {delay:.1f} s ({attempt}/{max_attempts})", file=sys.stderr, flush=True)


def token_help(client: Client) -> list[str]:
    """For a 401: where the token came from, or where the CLI looked for one and how to give one."""
    source = client.token_source.replace("the token argument", "--token").replace("token argument", "--token")
    if client.token:
        return [f"  the token sent came from {source}"]
    return [f"  no token was sent: {source}",
            "  give one with --token TOKEN, or set TRAINYARD_TOKEN, or set TRAINYARD_HOME to the folder whose "
            "'token' file holds it"]


def run_client_command(args: argparse.Namespace) -> int:
    """Call a client command and print its outcome (or its error) for people or, with --json, for scripts."""
    on_retry = None if getattr(args, "quiet", False) else print_retry
    client = Client(url=args.url, token=args.token, on_retry=on_retry)
    try:
        with client:
            outcome = args.handler(args, client)
    except ApiError as exc:
        text = problem_text(exc)
        if isinstance(exc, Unauthorized):
            text = "\n".join([text, *token_help(client)])
        print(text, file=sys.stderr)
        if args.json:
            print(dumps(problem_json(exc)))
        return 1
    except InputError as exc:  # an unreadable spec or inputs file, bad JSON
        message = str(exc)
        print(f"trainyard {args.command}: {message}", file=sys.stderr)
        if args.json:
            print(dumps({"error": {"status": 0, "title": "bad input", "detail": message}}))
        return 2
    except OSError as exc:  # e.g. `download -o` or `history --plot` into a folder that is not there
        print(f"trainyard {args.command}: {exc}", file=sys.stderr)
        if args.json:
            print(dumps({"error": {"status": 0, "title": "local file error", "detail": str(exc)}}))
        return 1
    for note in outcome.notes:
        print(note, file=sys.stderr)
    if args.json:
        print(dumps(outcome.data))
    elif outcome.text:
        print(outcome.text)
    sys.stdout.flush()
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
