"""Client-test fixtures: a fake service on loopback, and a client that retries fast."""

from __future__ import annotations

import pytest

from trainyard.client import Client
from trainyard.client.cli import main

from tests.support.fakeserver import FakeApi, FakeServer


@pytest.fixture
def fake():
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_client(fake):
    clients = []

    def make(**kwargs) -> Client:
        kwargs.setdefault("retries", 3)
        kwargs.setdefault("backoff", 0.01)
        kwargs.setdefault("max_backoff", 0.05)
        client = Client(kwargs.pop("url", fake.url), kwargs.pop("token", "secret-token"), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def fake_api(fake):
    return FakeApi(fake)


@pytest.fixture(scope="session")
def compose_stack(tmp_path_factory):
    """docker-compose.yml's api, migrate, two worker-cpu and reconciler as local processes (tests.support.composestack)."""
    from tests.support.composestack import drop_database, service_missing, start_stack
    from tests.support.databases import delete_redis_keys

    missing = service_missing()
    if missing:
        pytest.skip(f"the service's code is not in this tree: {', '.join(missing)} missing")

    stack, db_name, broker = start_stack(tmp_path_factory.mktemp("compose"))
    yield stack
    stack.stop()
    drop_database(db_name)
    delete_redis_keys(*broker.split("|"))


@pytest.fixture
def live(compose_stack):
    """A client for the compose stack."""
    with Client(compose_stack.url, compose_stack.token, retries=3, backoff=0.2) as client:
        yield client


@pytest.fixture
def cli(fake, fake_api, monkeypatch, capsys):
    """Run the CLI in-process against the fake service: `code, out, err = cli("status", "j1")`."""
    monkeypatch.setenv("TRAINYARD_URL", fake.url)
    monkeypatch.setenv("TRAINYARD_TOKEN", "secret-token")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
