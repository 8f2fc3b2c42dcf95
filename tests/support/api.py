"""API test helpers: an app on a migrated database with callers alice and bob, spec builders, problem+json checks."""

from __future__ import annotations

import copy

from trainyard.api.app import create_app
from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.tokens import create_token

from tests.support.databases import copy_migrated_sqlite

XOR = {"name": "xor", "dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 5, "seed": 1, "batch_size": 4}}

# Converges in 200 full-batch epochs (about 0.1 s): predictions are exactly XOR.
XOR_FIT = {"name": "xor-fit", "dataset": {"builtin": "xor"},
           "model": {"layers": [{"type": "dense", "units": 8, "activation": "tanh"},
                                {"type": "dense", "units": 1, "activation": "sigmoid"}]},
           "training": {"epochs": 200, "seed": 3, "batch_size": 4,
                        "optimizer": {"name": "adam", "learning_rate": 0.05}}}
XOR_INPUTS = [[0, 0], [0, 1], [1, 0], [1, 1]]

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def problem(r, status: int) -> dict:
    """Assert `r` is a problem+json response with `status`; return its body."""
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == status and body["type"].startswith("urn:trainyard:problem:")
    return body


def xor(**changes) -> dict:
    """A tiny XOR spec with top-level keys replaced."""
    return {**copy.deepcopy(XOR), **changes}


class Caller:
    """A test client that sends one user's bearer token."""

    def __init__(self, client, token: str, user_id: str):
        self.client, self.token, self.user_id = client, token, user_id

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path, headers=None, **kw):
        return self.client.get("/api/v1" + path, headers=self._headers(headers), **kw)

    def post(self, path, json=None, headers=None, **kw):
        return self.client.post("/api/v1" + path, json=json, headers=self._headers(headers), **kw)

    def delete(self, path, headers=None, **kw):
        return self.client.delete("/api/v1" + path, headers=self._headers(headers), **kw)

    def submit(self, spec=None, **kw) -> dict:
        r = self.post("/jobs", json=spec or xor(), **kw)
        assert r.status_code in (200, 201), r.get_json()
        return r.get_json()


class Api:
    """The app, its settings and sessions, and callers `alice` and `bob`."""

    def __init__(self, settings):
        self.settings = settings
        self.engine = make_engine(settings)
        self.sessions = make_sessionmaker(self.engine)
        self.app = create_app(settings, engine=self.engine)
        self.client = self.app.test_client()
        self.alice = self.caller("alice")
        self.bob = self.caller("bob")

    def caller(self, name: str) -> Caller:
        with session_scope(self.sessions) as s:
            token, user = create_token(session=s, user_name=name)
            return Caller(self.client, token, user.id)


def make_api(settings, **changes) -> Api:
    """The app on `settings` (with `changes`), its database upgraded to head first."""
    from trainyard.store.migrate import upgrade

    settings = settings.replace(**changes)
    copy_migrated_sqlite(settings)
    upgrade(settings)  # a no-op on a copy; migrates anything else
    return Api(settings)

