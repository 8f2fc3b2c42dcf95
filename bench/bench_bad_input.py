"""Issue 12 item 6's figures: what hostile JSON and text cost the API, and what they write to its log (run by hand).

    .venv/bin/python bench/bench_bad_input.py              # SQLite (the embedded default)
    .venv/bin/python bench/bench_bad_input.py --postgres   # a scratch PostgreSQL database on 127.0.0.1:5432

In-process (Flask's test client, no server), one request per case, each bounded: a spec with a million
keys in `backend_options` and one with a million unknown top-level keys (12 MB each: red-team #17, #18),
600 levels of nesting in a field (1.2 KB: #11), an integer of 5,000 digits (#12) and a path holding NUL
and a forged log line (#55). For each: the status, the seconds, the answer's bytes and the bytes the API
logged. Copy it into an older checkout to compare (it imports the checkout it sits in).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
XOR = {"dataset": {"builtin": "xor"}, "model": {"layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 1, "batch_size": 4}}
FORGED = "x%00%0A1999-12-31 23:59:59,000 CRITICAL api: admin token leaked: ty_FAKE"


def cases() -> list[tuple[str, str, str, bytes | None]]:
    """(name, method, path, body)."""
    keys = {f"k{i}": 0 for i in range(1_000_000)}
    return [
        ("1M keys in backend_options (12 MB)", "POST", "/jobs", json.dumps({**XOR, "backend_options": keys}).encode()),
        ("1M unknown top-level keys (12 MB)", "POST", "/jobs", json.dumps({**XOR, **keys}).encode()),
        ("600 levels in a field (1.2 KB)", "POST", "/jobs", b'{"x": ' + b"[" * 600 + b"]" * 600 + b"}"),
        ("an integer of 5,000 digits", "POST", "/jobs", b'{"x": ' + b"9" * 5000 + b"}"),
        ("NUL and a forged line in a path", "GET", f"/jobs/{FORGED}", None),
    ]


def make_client(postgres: bool, home: Path, cleanup: list):
    """A test client of an app on a fresh database, and a token; `cleanup` receives what drops that database."""
    from sqlalchemy import create_engine, text

    from trainyard.api.app import create_app
    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.migrate import upgrade
    from trainyard.store.settings import Settings
    from trainyard.store.tokens import create_token

    settings = Settings(home=home, rate_limit_burst=1000)
    if postgres:
        name = f"trainyard_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        settings = settings.replace(database_url=admin.url.set(database=name).render_as_string(hide_password=False))

        def drop() -> None:
            engine.dispose()
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        cleanup.append(drop)
    upgrade(settings)
    engine = make_engine(settings)
    with session_scope(make_sessionmaker(engine)) as s:
        token, _ = create_token(session=s, user_name="bench")
    return create_app(settings, engine=engine).test_client(), token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    cleanup: list = []
    client, token = make_client(args.postgres, Path(tempfile.mkdtemp(prefix="trainyard-bench-")), cleanup)
    try:
        run(client, token, log)
    finally:
        for step in cleanup:
            step()


def run(client, token: str, log: io.StringIO) -> None:
    print(f"{'case':38} {'status':>6} {'seconds':>8} {'answer bytes':>13} {'log bytes':>10} {'log lines':>9}")
    for name, method, path, body in cases():
        start, before = time.perf_counter(), log.tell()
        r = client.open("/api/v1" + path, method=method, data=body,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        seconds, logged = time.perf_counter() - start, log.getvalue()[before:]
        print(f"{name:38} {r.status_code:>6} {seconds:>8.2f} {len(r.data):>13,} {len(logged):>10,} "
              f"{logged.count(chr(10)):>9}")
        forged = [line for line in logged.splitlines() if line.startswith("1999-12-31")]
        if forged:
            print(f"{'':38} a forged line in the log: {forged[0][:60]}")


if __name__ == "__main__":
    main()
