"""Helpers shared by the test folders, imported as `tests.support.<module>`; fixtures stay in the conftest.py files.

- `processes`: real processes (start, stop, wait for, a free port, the environment that carries Settings).
- `databases`: fresh PostgreSQL databases (dropped in the background) and Redis namespaces, a copy of a migrated
  SQLite database, and the fast lifecycle timings.
- `api`, `fakeworker`: an app on a migrated database with callers alice and bob, spec builders, problem+json
  checks; playing the worker's part in-process (claim, record epochs, finish).
- `service`: a database with a real worker and reconciler (no API), as the worker tests use it.
- `cluster`, `shortvisibility`: the reliability tests' service on PostgreSQL + Redis, private Redis, TCP proxy.
- `hostile`: the security tests' payloads (pickles with canaries, crafted model files, bombs) and URL builders.
- `audit`: one audit hook that records unpickling and command runs while a test has armed it.
- `fakeserver`: a fake service on loopback for the client tests; `composestack`: docker-compose.yml's services
  as local processes; `livestack`: gunicorn API + worker for the contract and dashboard tests.
- `dockerkit`: the real Docker engine and compose project; `walkthrough`: the README, run as a newcomer would.
- `backend_data`: a spec and its data prepared exactly as a job does it.
- `threads`: a piece of work run in several threads at once (claim races), returning what they raised.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
