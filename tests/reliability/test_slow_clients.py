"""Issue 12.1–2: slow and long-lived connections never starve other requests, on both layouts.

A real gunicorn API (gevent worker) and a real worker, embedded (SQLite + file broker) and
production-style (PostgreSQL + Redis). The red team froze the embedded API with 16
half-sent headers, 16 event streams or 4 trickling bodies (one, with an uncached token,
held SQLite's write lock and cost a running job its lease). Here many more of each are
held open at once while a job trains; other requests, the write lock and the lease must
be unaffected, and the server must close each kind of slow client by itself.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import time
from typing import Iterator

import pytest
import requests

from trainyard.store.db import session_scope
from trainyard.store.settings import Settings
from trainyard.store.tokens import create_token, revoke_tokens

from tests.support.cluster import Cluster, cluster, moons_spec
from tests.support.processes import wait_for

pytestmark = pytest.mark.timeout(240)

HEADERS, STREAMS, BODIES = 60, 60, 12  # each several times what froze the embedded API
SERVING = dict(header_timeout_seconds=3.0, body_timeout_seconds=4.0, stream_max_seconds=6.0,
               stream_recheck_seconds=0.5)


@contextlib.contextmanager
def layout(kind: str, fresh_postgres, home, **changes) -> Iterator[Cluster]:
    """A cluster on the embedded default or on PostgreSQL + Redis."""
    if kind == "postgres":
        with cluster(fresh_postgres, home, **changes) as c:
            yield c
        return
    settings = Settings(home=home, lease_seconds=6.0, heartbeat_seconds=0.2, reconcile_interval_seconds=0.5,
                        republish_after_seconds=2.0, worker_live_seconds=5.0, **changes)
    c = Cluster(settings, settings)
    try:
        yield c
    finally:
        c.stop_all()


def connect(url: str) -> socket.socket:
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    s = socket.create_connection((host, int(port)), timeout=20)
    return s


def half_sent_header(url: str) -> socket.socket:
    s = connect(url)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-a: ")
    return s


def event_stream(url: str, token: str, job_id: str) -> socket.socket:
    s = connect(url)
    s.sendall(f"GET /api/v1/jobs/{job_id}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
              "Accept: text/event-stream\r\n\r\n".encode())
    return s


def slow_body(url: str, token: str) -> socket.socket:
    """A POST whose headers arrive at once and whose body never completes (a byte now and then)."""
    s = connect(url)
    s.sendall(f"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
              "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
    return s


def read_until_closed(s: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout bounds each read)."""
    data = b""
    while len(data) < limit:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


def sqlite_write_lock_is_free(settings: Settings) -> bool:
    """Whether another process could take SQLite's write lock right now (waiting at most 1 s)."""
    path = settings.database_url.split("///", 1)[1]
    con = sqlite3.connect(path, timeout=1.0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()


@pytest.mark.parametrize("kind", ["embedded", "postgres"])
def test_slow_clients_do_not_starve_others_and_are_closed_by_the_server(kind, fresh_postgres, tmp_path):
    with layout(kind, fresh_postgres, tmp_path / "home", **SERVING) as c:
        c.start_worker("worker")
        url = c.start_api()
        with session_scope(c.factory) as session:
            fresh_token, _ = create_token(session=session, user_name="mallory")  # never used: not in any cache
        job_id = c.create(moons_spec(epochs=400, checkpoint_every=50))
        c.wait(job_id, lambda job: job.status == "running", 60, "to start")
        held = ([half_sent_header(url) for _ in range(HEADERS)]
                + [event_stream(url, c.token, job_id) for _ in range(STREAMS)]
                + [slow_body(url, fresh_token) for _ in range(BODIES)])
        try:
            bodies = held[HEADERS + STREAMS:]
            for _ in range(20):  # all the while, others are served
                assert requests.get(url + "/health", timeout=10).status_code == 200
                r = c.api("GET", f"/jobs/{job_id}", timeout=10)
                assert r.status_code == 200 and r.json()["id"] == job_id
                if kind == "embedded":  # the trickling bodies hold no SQLite write lock
                    assert sqlite_write_lock_is_free(c.settings)
                for s in bodies:
                    with contextlib.suppress(OSError):
                        s.sendall(b" ")
                time.sleep(0.1)
            # The server ends every kind of slow client by itself.
            for s in held[:HEADERS]:
                assert read_until_closed(s) == b""  # closed after header_timeout_seconds, nothing sent
            for s in bodies:
                answer = read_until_closed(s)
                assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
                assert b"application/problem+json" in answer and b"body_timeout_seconds" in answer
            for s in held[HEADERS:HEADERS + STREAMS]:
                stream = read_until_closed(s)  # ends after stream_max_seconds (or when the job finishes)
                assert stream.startswith(b"HTTP/1.1 200") and b"event: status" in stream
        finally:
            for s in held:
                s.close()
        job = c.wait(job_id, timeout=120)
        assert (job.status, job.attempts) == ("succeeded", 1), job.error  # it kept its lease throughout
        assert c.epochs(job_id) == list(range(1, 401))


@pytest.mark.parametrize("kind", ["embedded", "postgres"])
def test_a_revoked_token_ends_its_open_event_stream(kind, fresh_postgres, tmp_path):
    with layout(kind, fresh_postgres, tmp_path / "home", **{**SERVING, "stream_max_seconds": 60.0}) as c:
        url = c.start_api()
        with session_scope(c.factory) as session:
            eve_token, _ = create_token(session=session, user_name="eve")
        eve = {"Authorization": f"Bearer {eve_token}"}
        r = requests.post(url + "/jobs", json=moons_spec(epochs=5), headers=eve, timeout=10)
        job_id = r.json()["id"]  # it stays queued: no worker runs here
        s = event_stream(url, eve_token, job_id)
        try:
            first = s.recv(65536)
            assert first.startswith(b"HTTP/1.1 200") and b"text/event-stream" in first
            with session_scope(c.factory) as session:
                assert revoke_tokens(session=session, token=eve_token) == 1
            rest = read_until_closed(s)  # each read waits at most 20 s; the stream ends within ~0.5 s
        finally:
            s.close()
        assert b"event: error" in rest and b"revoked" in rest
        # Reconnecting is refused once the API's token cache (TOKEN_CACHE_SECONDS) has forgotten the token.
        wait_for(lambda: requests.get(f"{url}/jobs/{job_id}", headers=eve, timeout=10).status_code == 401, 15,
                 "the revoked token to be refused")
        r = requests.get(f"{url}/jobs/{job_id}/events", headers=eve, timeout=10)
        assert r.status_code == 401 and r.json()["status"] == 401


def test_gunicorn_refusals_are_problem_json(tmp_path):
    settings = Settings(home=tmp_path / "home")
    c = Cluster(settings, settings)
    try:
        url = c.start_api()
        for request, status in ((b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-a: " + b"a" * 100_000 + b"\r\n\r\n",
                                 b"431"),
                                (b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-a: \x0bb\r\n\r\n", b"400")):
            s = connect(url)
            s.sendall(request)
            answer = read_until_closed(s)
            s.close()
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 " + status) and b"Content-Type: application/problem+json" in head
            problem = json.loads(body)
            assert problem["status"] == int(status) and problem["type"].startswith("urn:trainyard:problem:")
        assert requests.get(url + "/health", timeout=10).status_code == 200
    finally:
        c.stop_all()


def test_a_long_upload_parse_does_not_stop_the_api(tmp_path):
    """Parsing ~8 million CSV rows takes many seconds of CPU. Under gevent it runs in a thread
    (api.offload): /health keeps answering meanwhile, and gunicorn does not kill the worker."""
    import gzip
    import io
    import threading

    settings = Settings(home=tmp_path / "home")
    c = Cluster(settings, settings)
    try:
        url = c.start_api()
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb") as z:
            z.write(b"a,label\n")
            for _ in range(30):
                z.write(b"0,0\n1,1\n" * (1 << 17))  # 1 MiB, 262,144 rows
        answer: list[requests.Response] = []
        upload = threading.Thread(target=lambda: answer.append(c.api(
            "POST", "/datasets", files={"file": ("big.csv.gz", out.getvalue())},
            data={"name": "big", "format": "csv"}, timeout=300)))
        upload.start()
        during = 0
        for _ in range(10):
            time.sleep(0.5)
            r = requests.get(url + "/health", timeout=5)  # would time out while the parse held the process
            assert r.status_code == 200
            during += upload.is_alive()
        upload.join(300)
        assert during > 0, "the upload ended before /health was probed: make it larger"
        assert answer[0].status_code == 201, answer[0].text
        assert answer[0].json()["n_samples"] == 30 * (1 << 18)
        assert "WORKER TIMEOUT" not in c.log_text("api")
    finally:
        c.stop_all()


def test_a_write_waiting_for_sqlites_lock_does_not_stop_the_api(tmp_path):
    """Another process holds SQLite's write lock (as a worker writing a checkpoint does). A submit waits for it
    in short cooperative sleeps, so /health and reads are served meanwhile; then the submit succeeds."""
    import threading

    settings = Settings(home=tmp_path / "home")
    c = Cluster(settings, settings)
    try:
        url = c.start_api()
        assert c.api("GET", "/jobs").status_code == 200  # the token is cached: the submit needs only the lock
        path = settings.database_url.split("///", 1)[1]
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        answer: list[requests.Response] = []
        submit = threading.Thread(target=lambda: answer.append(c.api("POST", "/jobs", json=moons_spec(epochs=1))))
        try:
            submit.start()
            served = 0
            for _ in range(8):
                time.sleep(0.3)
                assert requests.get(url + "/health", timeout=2).status_code == 200
                assert c.api("GET", "/jobs", timeout=2).status_code == 200
                served += submit.is_alive()
            assert served == 8, "the submit did not wait for the lock"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        submit.join(30)
        assert answer[0].status_code == 201, answer[0].text
    finally:
        c.stop_all()
