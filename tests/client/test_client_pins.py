"""Pins from the Python client and the CLI, and a 410 for what retention purged (against the fake service)."""

from __future__ import annotations

import json

import pytest

from trainyard.client.cli import main
from trainyard.client.errors import Gone

from tests.support.fakeserver import Reply, problem

PURGED = {"at": "2026-11-30T12:00:00Z", "removed": ["history", "model"]}


@pytest.fixture
def pins(fake):
    state = {"job": False, "sweep": False}

    def job(req, match):
        state["job"] = req.method == "POST"
        return Reply(200, {"id": match[1], "status": "succeeded", "pinned": state["job"], "purged": PURGED})

    def sweep(req, match):
        state["sweep"] = req.method == "POST"
        return Reply(200, {"id": match[1], "status": "succeeded", "pinned": state["sweep"]})

    for method in ("POST", "DELETE"):
        fake.route(method, r"/jobs/(\w+)/pin", job)
        fake.route(method, r"/sweeps/(\w+)/pin", sweep)
    fake.route("GET", r"/jobs/(\w+)/history", lambda req, match: problem(
        410, "Gone", f"the history of job {match[1]} was removed on 2026-11-30 12:00 UTC by the retention policy",
        type="urn:trainyard:problem:purged"))
    return state


def test_client_pins_and_unpins_jobs_and_sweeps(make_client, fake, pins):
    client = make_client()
    assert client.pin("j1")["pinned"] is True and pins["job"] is True
    assert client.pin("j1", pinned=False)["pinned"] is False and pins["job"] is False
    assert client.pin_sweep("s1")["pinned"] is True and pins["sweep"] is True
    assert [r.method for r in fake.requests if r.path.endswith("/pin")] == ["POST", "DELETE", "POST"]
    with pytest.raises(Gone, match="410 Gone: the history of job j1 was removed"):
        client.history("j1")


def test_cli_pin_unpin_and_a_purged_part(fake, pins, capsys):
    common = ["--url", fake.url, "--token", "t"]
    assert main(["pin", "j1", *common]) == 0
    out = capsys.readouterr().out
    assert "pinned job j1: retention never purges it" in out and "already removed its history, model" in out
    assert main(["unpin", "s1", "--sweep", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"id": "s1", "status": "succeeded",
                                                                   "pinned": False}
    assert main(["history", "j1", *common]) == 1
    assert "410 Gone: the history of job j1 was removed" in capsys.readouterr().err
