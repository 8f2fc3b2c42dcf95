"""Retries against a real loopback server that answers 503 for a while; error answers become typed exceptions."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from trainyard.client import (ApiError, Client, Conflict, ConnectionFailed, NotFound, RateLimited, ServerError,
                              ServiceUnavailable, Unauthorized, ValidationFailed)

from tests.support.fakeserver import FakeServer, Reply, problem

JOB = {"id": "j1", "name": "xor", "status": "queued", "progress": {"epoch": 0, "epochs": 10}}


def flaky(failures: int, then: Reply, status: int = 503, headers: dict | None = None):
    """A route that answers `status` `failures` times, then `then`."""
    count = {"n": 0}

    def route(req, match):
        count["n"] += 1
        if count["n"] <= failures:
            reply = problem(status, "Service Unavailable", "database restarting")
            reply.headers.update(headers or {})
            return reply
        return then

    return route


def test_get_is_retried_through_503s(fake, make_client):
    fake.route("GET", "/jobs/j1", flaky(2, Reply(200, JOB)))
    job = make_client().get("j1")
    assert job.id == "j1" and job.status == "queued"
    assert len(fake.calls("GET", "/jobs/j1")) == 3


@pytest.mark.parametrize("status", [502, 504])
def test_other_gateway_errors_are_retried(fake, make_client, status):
    fake.route("GET", "/catalog", flaky(1, Reply(200, {"backends": ["numpy"]}), status=status))
    assert make_client().catalog() == {"backends": ["numpy"]}


def test_retries_give_up_with_the_problem_details(fake, make_client):
    fake.route("GET", "/jobs/j1", flaky(100, Reply(200, JOB)))
    with pytest.raises(ServiceUnavailable) as info:
        make_client(retries=2).get("j1")
    assert (info.value.status, info.value.title, info.value.detail) == (503, "Service Unavailable",
                                                                         "database restarting")
    assert len(fake.calls("GET", "/jobs/j1")) == 3


def test_backoff_doubles_and_honours_retry_after(fake, make_client):
    fake.route("GET", "/workers", flaky(1, Reply(200, {"items": []}), headers={"Retry-After": "0.3"}))
    client = make_client(backoff=0.01, max_backoff=1.0)
    start = time.monotonic()
    assert client.workers() == []
    assert time.monotonic() - start >= 0.3
    assert [client.http.delay(n) for n in range(4)] == [0.01, 0.02, 0.04, 0.08]
    assert client.http.delay(10) == 1.0


def test_submit_is_retried_under_one_idempotency_key(fake, make_client):
    fake.route("POST", "/jobs", flaky(2, Reply(201, JOB, {"Location": "/api/v1/jobs/j1"})))
    client = make_client()
    assert client.submit({"name": "xor"}).id == "j1"
    calls = fake.calls("POST", "/jobs")
    keys = {c.headers["idempotency-key"] for c in calls}
    assert len(calls) == 3 and len(keys) == 1
    assert uuid.UUID(keys.pop()).version == 4
    assert all(c.json() == {"name": "xor"} for c in calls)
    client.submit({"name": "again"})
    assert fake.calls("POST", "/jobs")[-1].headers["idempotency-key"] not in {c.headers["idempotency-key"] for c in calls}


def test_upload_is_not_retried(fake, make_client, tmp_path):
    fake.route("POST", "/datasets", flaky(1, Reply(201, {"id": "d1"})))
    data = tmp_path / "points.csv"
    data.write_text("x,y\n1,0\n2,1\n")
    with pytest.raises(ServiceUnavailable):
        make_client().upload_dataset(data, target="y")
    assert len(fake.calls("POST", "/datasets")) == 1


def test_connection_refused_is_retried_until_the_server_is_up(make_client):
    with socket.socket() as probe:  # a free loopback port, closed again: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late = FakeServer(port)
    late.route("GET", "/health", lambda req, m: Reply(200, {"status": "ok"}))
    timer = threading.Timer(0.3, late.start)
    timer.start()
    try:
        client = make_client(url=f"http://127.0.0.1:{port}", retries=8, backoff=0.05, max_backoff=0.2)
        assert client.health() == {"status": "ok"}
        assert len(late.calls("GET", "/health")) == 1
    finally:
        timer.join()
        late.stop()


def test_connection_refused_for_good_raises_connection_failed(make_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(url=f"http://127.0.0.1:{port}", retries=1)
    with pytest.raises(ConnectionFailed) as info:
        client.get("j1")
    assert isinstance(info.value, ServiceUnavailable) and "Connection refused" in info.value.detail


@pytest.mark.parametrize("status,cls", [(401, Unauthorized), (404, NotFound), (409, Conflict),
                                        (422, ValidationFailed), (429, RateLimited), (500, ServerError),
                                        (418, ApiError)])
def test_error_answers_are_typed_and_not_retried(fake, make_client, status, cls):
    errors = [{"loc": "model.layers[2].activation", "msg": "unknown activation 'sigmoidd'"}]
    fake.route("GET", "/jobs/j1", lambda req, m: problem(status, "Oops", "it went wrong", errors=errors,
                                                          instance="/api/v1/jobs/j1"))
    with pytest.raises(cls) as info:
        make_client().get("j1")
    exc = info.value
    assert (exc.status, exc.title, exc.detail, exc.errors) == (status, "Oops", "it went wrong", errors)
    assert exc.problem["instance"] == "/api/v1/jobs/j1"
    assert "model.layers[2].activation: unknown activation 'sigmoidd'" in str(exc)
    assert len(fake.calls("GET", "/jobs/j1")) == 1


def test_rate_limited_carries_retry_after(fake, make_client):
    reply = problem(429, "Too Many Requests", "slow down")
    reply.headers["Retry-After"] = "2"
    fake.route("GET", "/jobs", lambda req, m: reply)
    with pytest.raises(RateLimited) as info:
        list(make_client().list())
    assert info.value.retry_after == 2.0


def test_a_non_json_error_keeps_its_text(fake, make_client):
    fake.route("GET", "/catalog", lambda req, m: Reply(500, b"<html>boom</html>", {"Content-Type": "text/html"}))
    with pytest.raises(ServerError) as info:
        make_client().catalog()
    assert info.value.detail == "<html>boom</html>"


def test_token_and_url_come_from_the_environment(fake, monkeypatch, tmp_path):
    fake.route("GET", "/health", lambda req, m: Reply(200, {"status": "ok"}))
    monkeypatch.setenv("TRAINYARD_URL", fake.url + "/api/v1/")
    monkeypatch.delenv("TRAINYARD_TOKEN", raising=False)
    monkeypatch.setenv("TRAINYARD_HOME", str(tmp_path))
    (tmp_path / "token").write_text("created for alice\nty_local_token\n")
    with Client() as client:
        client.health()
    assert fake.requests[-1].headers["authorization"] == "Bearer ty_local_token"
    monkeypatch.setenv("TRAINYARD_TOKEN", "ty_env_token")
    with Client() as client:
        client.health()
    assert fake.requests[-1].headers["authorization"] == "Bearer ty_env_token"


def test_list_follows_next_cursor(fake, make_client):
    pages = {None: (["a", "b"], "c2"), "c2": (["c", "d"], "c3"), "c3": (["e"], None)}

    def route(req, match):
        ids, cursor = pages[req.query.get("cursor")]
        return Reply(200, {"items": [{"id": i, "status": "succeeded"} for i in ids], "next_cursor": cursor})

    fake.route("GET", "/jobs", route)
    client = make_client()
    assert [j.id for j in client.list(status="succeeded")] == ["a", "b", "c", "d", "e"]
    assert fake.calls("GET", "/jobs")[0].query["status"] == "succeeded"
    assert [j.id for j in client.list(limit=3)] == ["a", "b", "c"]


def test_cancel_retried_after_it_got_through_is_not_an_error(fake, make_client):
    state = {"status": "running"}

    def cancel(req, match):
        if state["status"] == "cancelled":
            return problem(409, "Conflict", "job already finished")
        state["status"] = "cancelled"
        return problem(503, "Service Unavailable")  # the cancel happened but the answer was lost

    fake.route("POST", "/jobs/j1/cancel", cancel)
    fake.route("GET", "/jobs/j1", lambda req, m: Reply(200, {**JOB, "status": state["status"]}))
    assert make_client().cancel("j1").status == "cancelled"


def test_upload_sends_the_fields_and_guesses_the_format(fake, make_client, tmp_path):
    from trainyard.client.client import guess_format

    fake.route("POST", "/datasets", lambda req, m: Reply(201, {"id": "d1"}))
    images, labels = tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-labels-idx1-ubyte.gz"
    images.write_bytes(b"images")
    labels.write_bytes(b"labels")
    assert make_client().upload_dataset(images, labels=labels, task="classification") == {"id": "d1"}
    body = fake.calls("POST", "/datasets")[0].body
    for part in (b'name="format"\r\n\r\nidx', b'name="task"\r\n\r\nclassification', b'name="labels"; filename=',
                 b'name="name"\r\n\r\ntrain-images-idx3-ubyte'):
        assert part in body
    assert [guess_format(Path(n)) for n in ("a.CSV", "b.npz", "t10k-labels-idx1-ubyte", "x.bin")] == [
        "csv", "npz", "idx", None]
