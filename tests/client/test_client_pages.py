"""The client and the CLI follow the service's pages: the real API served on loopback, on both databases."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from trainyard.client import Client
from trainyard.client.cli import main

from tests.support.api import XOR_FIT, make_api, xor
from tests.support.fakeserver import last_json
from tests.support.fakeworker import claim, epochs, train



@pytest.fixture
def served(db_settings):
    """The API app (tests.support.api.Api) served by a real HTTP server on 127.0.0.1; `served.url` is its address."""
    api = make_api(db_settings)
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="api", daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_port}"
    yield api
    server.shutdown()
    thread.join(10)
    api.engine.dispose()


def test_client_and_cli_get_every_epoch_across_history_pages(served, monkeypatch, capsys, tmp_path):
    api = served
    job = api.alice.submit(xor(training={"epochs": 3000}))
    attempt = claim(api, job["id"])
    for first, last in ((1, 999), (1000, 2345)):  # 2,345 epochs: three pages of the default 1,000
        epochs(api, job["id"], attempt, [{"epoch": e, "loss": 1 / e, "time": 0.01}
                                                 for e in range(first, last + 1)])
    assert len(api.alice.get(f"/jobs/{job['id']}/history").get_json()["epochs"]) == 1000  # one page
    with Client(api.url, api.alice.token, retries=0) as client:
        assert [row["epoch"] for row in client.history(job["id"])] == list(range(1, 2346))
        assert [row["epoch"] for row in client.history(job["id"], since=1500)] == list(range(1501, 2346))
    monkeypatch.setenv("TRAINYARD_URL", api.url)
    monkeypatch.setenv("TRAINYARD_TOKEN", api.alice.token)
    png = tmp_path / "curves.png"
    assert main(["history", job["id"], "--plot", str(png), "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert [row["epoch"] for row in out["epochs"]] == list(range(1, 2346)) and out["plot"] == str(png)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert main(["history", job["id"]]) == 0
    assert "showing 40 of 2345 epochs" in capsys.readouterr().err


def test_cli_list_shows_job_summaries(served, monkeypatch, capsys):
    api = served
    job = api.alice.submit(XOR_FIT)
    train(api, job["id"], XOR_FIT)
    monkeypatch.setenv("TRAINYARD_URL", api.url)
    monkeypatch.setenv("TRAINYARD_TOKEN", api.alice.token)
    assert main(["list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:6] == [job["id"], "xor-fit", "succeeded", "numpy", "cpu", "200/200"]
    assert main(["list", "--json"]) == 0
    [item] = last_json(capsys.readouterr().out)["items"]
    assert item["id"] == job["id"] and item["metrics"]["accuracy"] == 1.0 and "spec" not in item
