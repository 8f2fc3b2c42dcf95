"""The service commands: thin wrappers that import their owner's module only when run."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Callable


def call(module: str, function: str, *args: Any, **kwargs: Any) -> int:
    """Import `module` lazily and return `function(*args, **kwargs)` as an exit code."""
    try:
        target: Callable[..., int | None] = getattr(importlib.import_module(module), function)
    except (ModuleNotFoundError, AttributeError) as exc:
        print(f"trainyard: {module}.{function} is not available in this installation ({exc})", file=sys.stderr)
        return 1
    code = target(*args, **kwargs)
    return int(code or 0)


def run(args: argparse.Namespace) -> int:
    return call("trainyard.client.local_run", "run_command", args.spec, save=args.save, quiet=args.quiet,
                as_json=True if args.json else None)


def up(args: argparse.Namespace) -> int:
    return call("trainyard.api.embedded", "up", host=args.host, port=args.port)


def api(args: argparse.Namespace) -> int:
    return call("trainyard.api.serve", "serve", host=args.host, port=args.port, workers=args.workers)


def worker(args: argparse.Namespace) -> int:
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    return call("trainyard.worker.main", "run_worker", queues=queues, concurrency=args.concurrency)


def reconcile(args: argparse.Namespace) -> int:
    return call("trainyard.worker.reconciler", "main")


def gc(args: argparse.Namespace) -> int:
    return call("trainyard.store.gc", "gc_command", dry_run=args.dry_run, as_json=args.json)


def migrate(args: argparse.Namespace) -> int:
    return call("trainyard.store.migrate", "main")


def token_create(args: argparse.Namespace) -> int:
    return call("trainyard.store.token_commands", "create_token_cli", args.user, name=args.name, scopes=args.scopes,
                expires=args.expires, as_json=args.json, create_database=args.create_database)


def token_list(args: argparse.Namespace) -> int:
    return call("trainyard.store.token_commands", "list_tokens_cli", args.user, as_json=args.json)


def token_revoke(args: argparse.Namespace) -> int:
    if not (args.token or args.user or args.id):
        print("trainyard token revoke: give a TOKEN, --id ID or --user NAME", file=sys.stderr)
        if args.json:
            print('{"error": {"status": 0, "title": "bad usage", "detail": "give a TOKEN, --id ID or --user NAME"}}')
        return 2
    return call("trainyard.store.token_commands", "revoke_token_cli", args.token, args.user, token_id=args.id, name=args.name,
                as_json=args.json)


def celery(args: argparse.Namespace) -> int:
    return call("trainyard.worker.celerycli", "run_celery", args.celery_args)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register the service commands on the top-level parser's subcommands."""
    p = sub.add_parser("run", help="train a spec locally in this process (no service)",
                       description="Train a job spec in this process, with no service: a progress bar on stderr, then "
                                   "a summary at a terminal, or the result as one JSON line (the last stdout line: "
                                   "status, metrics, error, history, spec, versions, stop_reason) with --json or when "
                                   "stdout is not a terminal. A dataset {\"path\": ...} is relative to the spec file.",
                       epilog="exit codes: 0 succeeded, 1 invalid spec or training failed, 2 unreadable spec file or "
                              "unusable --save path")
    p.add_argument("spec", metavar="SPEC.json", help="the job spec file")
    p.add_argument("--save", metavar="FILE", help="write the trained model file (its folder must exist)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line even at a terminal")
    p.set_defaults(handler=run, service=True)

    p = sub.add_parser("up", help="all-in-one local service: migrate, API, one worker, reconciler",
                       description="Migrate the database, then run the API, one worker and the reconciler as child "
                                   "processes until Ctrl-C (`make run` runs this). Everything lives under "
                                   "TRAINYARD_HOME (default ./var of the current folder): the SQLite database, the "
                                   "broker's folders and the token file `token`, made for user `local`. Other "
                                   "TRAINYARD_* settings apply (README, Configuration).")
    p.add_argument("--host", default="127.0.0.1", help="address the API listens on (default 127.0.0.1: this "
                                                       "machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="the API's port (default 8000)")
    p.set_defaults(handler=up, service=True)

    p = sub.add_parser("api", help="serve the HTTP API with gunicorn")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.set_defaults(handler=api, service=True)

    p = sub.add_parser("worker", help="run a Celery worker that trains jobs")
    p.add_argument("--queues", default="cpu", help="comma-separated: cpu, gpu or cpu,gpu")
    p.add_argument("--concurrency", type=int, default=1, help="jobs trained at once")
    p.set_defaults(handler=worker, service=True)

    p = sub.add_parser("reconcile", help="run the reconciler loop (re-enqueues lost jobs)",
                       description="Requeue jobs whose worker was lost, re-send unclaimed queued jobs, run the sweep "
                                   "controller and, with retention on, gc. Uses TRAINYARD_DATABASE_URL and "
                                   "TRAINYARD_BROKER_URL (default: under TRAINYARD_HOME, ./var).")
    p.set_defaults(handler=reconcile, service=True)

    p = sub.add_parser("gc", help="purge finished jobs past TRAINYARD_RETENTION_DAYS and delete unreferenced blobs",
                       description="Purge the history, checkpoint and model of finished, unpinned jobs older than "
                                   "TRAINYARD_RETENTION_DAYS (0: none), then delete stored blobs nothing refers to "
                                   "(older than TRAINYARD_GC_GRACE_SECONDS). Says what it removes and how many bytes.")
    p.add_argument("--dry-run", action="store_true", help="change nothing; say what would be removed")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(handler=gc, service=True)

    p = sub.add_parser("migrate", help="create or upgrade the database schema",
                       description="Bring TRAINYARD_DATABASE_URL's schema (default: SQLite in TRAINYARD_HOME, ./var) "
                                   "to the newest version; safe to run again.")
    p.set_defaults(handler=migrate, service=True)

    p = sub.add_parser("celery", help="Celery's own tools on trainyard's broker: inspect ping, status, flower…",
                       description="Celery's command line on the app the workers run (TRAINYARD_* settings), e.g. "
                                   "`trainyard celery inspect ping` or `trainyard celery flower --port=5555`. "
                                   "Workers answer only with TRAINYARD_CELERY_MONITORING=true.")
    p.add_argument("celery_args", nargs=argparse.REMAINDER, metavar="ARGS", help="celery's arguments")
    p.set_defaults(handler=celery, service=True)

    p = sub.add_parser("token", help="create, list or revoke API tokens")
    token_sub = p.add_subparsers(dest="token_command", metavar="create|list|revoke", required=True)
    as_json = dict(action="store_true", help="print one JSON object as the last line of stdout")
    t = token_sub.add_parser("create", help="create a token; printed on the last line",
                             description="Create a token in the database the service uses: TRAINYARD_DATABASE_URL, "
                                         "else $TRAINYARD_HOME/trainyard.db (default ./var of the current folder, "
                                         "so run it where `make run` runs). Says which database; refuses one that "
                                         "does not exist unless --create-database.")
    t.add_argument("--user", required=True, metavar="NAME")
    t.add_argument("--name", help="a label to tell this token apart in `token list` (e.g. ci, dashboard)")
    t.add_argument("--scopes", default="read,write",
                   help="read (see jobs, results, models; predict) and/or write (also submit, cancel, delete, "
                        "upload); default read,write")
    t.add_argument("--expires", metavar="DURATION",
                   help="30d, 12h, 2w… or never (default $TRAINYARD_TOKEN_DEFAULT_EXPIRY, 90d)")
    t.add_argument("--create-database", action="store_true",
                   help="create the database (and its schema) if there is none yet, instead of refusing")
    t.add_argument("--json", **as_json)
    t.set_defaults(handler=token_create, service=True)
    t = token_sub.add_parser("list", help="every token's name, scopes, state, created, last used and expiry "
                                          "(never the token)")
    t.add_argument("--user", metavar="NAME", help="only this user's tokens")
    t.add_argument("--json", **as_json)
    t.set_defaults(handler=token_list, service=True)
    t = token_sub.add_parser("revoke", help="revoke one token (by the token or its id), a user's tokens named "
                                            "NAME, or all of a user's tokens")
    t.add_argument("token", nargs="?", metavar="TOKEN")
    t.add_argument("--id", metavar="ID", help="the token's id, as `token list` shows it")
    t.add_argument("--user", metavar="NAME")
    t.add_argument("--name", metavar="TOKEN_NAME", help="with --user: only that user's tokens with this name")
    t.add_argument("--json", **as_json)
    t.set_defaults(handler=token_revoke, service=True)
