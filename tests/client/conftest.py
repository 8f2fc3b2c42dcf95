"""Client-test fixtures: a fake service on loopback, and a client that retries fast."""

from __future__ import annotations

import pytest

from client import Client
from clientfake import FakeServer


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
    from clientfake import FakeApi

    return FakeApi(fake)
