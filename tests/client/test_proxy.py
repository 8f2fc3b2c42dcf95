"""The reverse proxy of docker-compose.yml: the real nginx with deploy/nginx.conf in front of a real API process,
on loopback ports (issue 12 items 1 and 7).

Only what cannot be the same outside containers is replaced in the config: the listening and upstream
addresses, and the paths of the pid, log and temporary files. The API runs as compose runs it behind the
proxy (`trusted_proxies` 1), with a short `body_timeout_seconds`, so that a body the proxy did not buffer
would be refused with 408.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.migrate import upgrade
from trainyard.store.settings import Settings
from trainyard.store.tokens import create_token

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed; CI installs Debian's nginx-light "
                                                      "(apt-get install nginx-light), as .ci/run does")
XOR = json.loads((ROOT / "examples" / "xor_relu.json").read_text())
BODY_TIMEOUT = 1.0  # the API's body_timeout_seconds here; the slow bodies below take 5 s
SLOW_BYTES = 10  # sent one every 0.5 s
BUDGET = 3  # auth_failures_per_address


def wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def answers(url: str, **kw) -> bool:
    try:
        return requests.get(url, timeout=5, **kw).status_code == 200
    except requests.RequestException:
        return False


def render(folder: Path, *, listen: str, upstream: str, tls: tuple[str, Path] | None = None) -> Path:
    """deploy/nginx.conf with loopback addresses and paths under `folder` (with its TLS lines on, if `tls`)."""
    conf = CONF.read_text()
    changes = {"listen 8080;": f"listen {listen};", "server api:8000;": f"server {upstream};",
               "pid /tmp/nginx.pid;": f"pid {folder}/nginx.pid;", "access_log /dev/stdout;":
               f"access_log {folder}/access.log;"}
    if tls:
        address, certs = tls
        changes.update({"# listen 8443 ssl;": f"listen {address} ssl;",
                        "# ssl_certificate     /etc/nginx/tls/": f"ssl_certificate     {certs}/",
                        "# ssl_certificate_key /etc/nginx/tls/": f"ssl_certificate_key {certs}/",
                        "# ssl_protocols": "ssl_protocols"})
    for old, new in changes.items():
        assert conf.count(old) == 1, f"deploy/nginx.conf no longer has {old!r} once; update this test"
        conf = conf.replace(old, new)
    path = folder / "nginx.conf"
    path.write_text(conf.replace("/tmp/nginx-", f"{folder}/nginx-"))
    return path


def start_nginx(folder: Path, **kw) -> subprocess.Popen:
    """The real nginx on the rendered config, in the foreground (its test run first)."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = render(folder, **kw)
    user = " user root;" if os.geteuid() == 0 else ""  # as root its workers would be nobody, who can't reach tmp
    argv = [NGINX, "-e", str(folder / "error.log"), "-p", str(folder), "-c", str(conf), "-g", "daemon off;" + user]
    checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr + (folder / "error.log").read_text()
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Stack:
    folder: Path
    api: str  # http://127.0.0.1:port, straight to the API
    proxy: str  # through nginx
    api_port: int
    proxy_port: int
    token: str

    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A real API process (SQLite) with nginx in front, both on free loopback ports."""
    folder = tmp_path_factory.mktemp("proxy")
    settings = Settings(home=folder / "home", trusted_proxies=1, body_timeout_seconds=BODY_TIMEOUT,
                        auth_failures_per_address=BUDGET, auth_failure_window_seconds=3600)
    upgrade(settings)
    engine = make_engine(settings)
    with session_scope(make_sessionmaker(engine)) as s:
        token, _ = create_token(session=s, user_name="alice")
    engine.dispose()
    api_port, proxy_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    env.update(settings.to_env(), PYTHONPATH=str(ROOT))
    with open(folder / "api.log", "wb") as log:
        api = subprocess.Popen([sys.executable, "-m", "trainyard.api.serve", "--host", "127.0.0.1", "--port", str(api_port),
                                "--workers", "1"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    nginx = None
    try:
        wait_until(lambda: api.poll() is not None or answers(f"http://127.0.0.1:{api_port}/api/v1/health"), 60,
                   "the API")
        assert api.poll() is None, (folder / "api.log").read_text()
        nginx = start_nginx(folder / "nginx", listen=f"127.0.0.1:{proxy_port}", upstream=f"127.0.0.1:{api_port}")
        wait_until(lambda: answers(f"http://127.0.0.1:{proxy_port}/api/v1/health"), 30, "nginx")
        yield Stack(folder, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{proxy_port}", api_port, proxy_port,
                    token)
    finally:
        if nginx is not None:
            stop(nginx, signal.SIGQUIT)  # nginx's graceful stop
        stop(api)


def slow_post(port: int, path: str, body: bytes, headers: dict, *, between=None,
              source: str = "127.0.0.1") -> tuple[http.client.HTTPResponse, int]:
    """POST `body` to 127.0.0.1:`port`: all but its last SLOW_BYTES at once, then one byte every ~0.5 s, calling
    `between()` before each. Stops sending early if the server answers; returns the answer and the bytes sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    lines = [f"POST {path} HTTP/1.1", "Host: trainyard", f"Content-Length: {len(body)}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body[:-SLOW_BYTES])
    sent = len(body) - SLOW_BYTES
    for i in range(SLOW_BYTES):
        if select.select([sock], [], [], 0.5)[0]:  # the server answered before the body was complete
            break
        if between is not None:
            between()
        sock.sendall(body[sent:sent + 1])
        sent += 1
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.body = response.read()  # type: ignore[attr-defined]
    sock.close()
    return response, sent


def problem(response, status: int) -> dict:
    assert response.status == status, response.body
    assert response.getheader("Content-Type").startswith("application/problem+json")
    return json.loads(response.body)


def test_a_slow_body_reaches_the_api_only_when_complete_and_others_are_served_meanwhile(stack):
    body = json.dumps({**XOR, "name": "slow"}).encode()
    headers = {**stack.auth(), "Content-Type": "application/json"}
    # Straight to the API, this body is too slow: the API refuses it before it is complete.
    direct, sent = slow_post(stack.api_port, "/api/v1/jobs", body, headers)
    assert "body_timeout_seconds" in problem(direct, 408)["detail"] and sent < len(body)

    served = []

    def others() -> None:  # while the slow body trickles into the proxy, other requests go through it
        health = requests.get(f"{stack.proxy}/api/v1/health", timeout=10)
        jobs = requests.get(f"{stack.proxy}/api/v1/jobs", headers=stack.auth(), timeout=10)
        served.append((health.status_code, jobs.status_code, [j["name"] for j in jobs.json()["items"]]))

    proxied, sent = slow_post(stack.proxy_port, "/api/v1/jobs", body, headers, between=others)
    assert proxied.status == 201, proxied.body  # the API got the whole body at once
    assert sent == len(body) and json.loads(proxied.body)["name"] == "slow"
    assert served == [(200, 200, [])] * SLOW_BYTES  # served every time; the job did not exist before the last byte
    jobs = requests.get(f"{stack.proxy}/api/v1/jobs", headers=stack.auth(), timeout=10).json()["items"]
    assert [j["name"] for j in jobs] == ["slow"]


def test_event_streams_pass_the_proxy_as_they_are_written(stack):
    job = requests.post(f"{stack.proxy}/api/v1/jobs", json={**XOR, "name": "watched"}, headers=stack.auth(),
                        timeout=10).json()
    # No worker runs: the job stays queued and its stream stays open after its first event. Had the proxy
    # buffered the stream, that event would not arrive before the read timeout.
    with requests.get(f"{stack.proxy}/api/v1/jobs/{job['id']}/events", headers=stack.auth(), stream=True,
                      timeout=(5, 20)) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        assert next(line for line in lines if line.startswith("event:")) == "event: status"
        data = json.loads(next(lines).removeprefix("data: "))
    assert (data["id"], data["status"]) == (job["id"], "queued")


def test_the_api_throttles_the_address_the_proxy_forwards_not_the_proxys(stack):
    bad = {"Authorization": "Bearer ty_" + "A" * 43, "X-Forwarded-For": "127.0.0.99"}  # the spoof is appended to

    def get(source: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", stack.proxy_port, timeout=10, source_address=(source, 0))
        conn.request("GET", "/api/v1/jobs", headers=bad)
        response = conn.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        conn.close()
        return response

    assert [get("127.0.0.5").status for _ in range(BUDGET)] == [401] * BUDGET
    refused = get("127.0.0.5")
    detail = problem(refused, 429)["detail"]
    assert "127.0.0.5" in detail and "auth_failures_per_address" in detail
    assert get("127.0.0.6").status == 401  # another client behind the same proxy keeps its own budget
    assert requests.get(f"{stack.proxy}/api/v1/jobs", headers=stack.auth(), timeout=10).status_code == 200


def test_what_the_proxy_refuses_itself_is_problem_json(stack, tmp_path):
    conn = http.client.HTTPConnection("127.0.0.1", stack.proxy_port, timeout=10)
    conn.putrequest("POST", "/api/v1/datasets")
    conn.putheader("Content-Length", str(300 * 2**20))  # over client_max_body_size: refused before any byte
    conn.endheaders()
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    assert "client_max_body_size" in problem(response, 413)["detail"]

    port = free_port()  # a proxy whose API does not answer
    nginx = start_nginx(tmp_path / "down", listen=f"127.0.0.1:{port}", upstream=f"127.0.0.1:{free_port()}")
    try:
        wait_until(lambda: answers_at(port), 30, "the proxy with no API")
        r = requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
    finally:
        stop(nginx, signal.SIGQUIT)
    assert r.headers["Content-Type"].startswith("application/problem+json") and r.headers["Retry-After"] == "5"
    assert r.json()["status"] == 503 and "not answering" in r.json()["detail"]


def answers_at(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_config_s_tls_lines_serve_https(stack, tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate to test the TLS lines with")
    certs = tmp_path / "tls"
    certs.mkdir()
    made = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                           "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(certs / "privkey.pem"), "-out", str(certs / "fullchain.pem")],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    http_port, https_port = free_port(), free_port()
    nginx = start_nginx(tmp_path / "nginx", listen=f"127.0.0.1:{http_port}", upstream=f"127.0.0.1:{stack.api_port}",
                        tls=(f"127.0.0.1:{https_port}", certs))
    try:
        url = f"https://127.0.0.1:{https_port}/api/v1/jobs"
        wait_until(lambda: answers_at(https_port), 30, "nginx on its TLS port")
        r = requests.get(url, headers=stack.auth(), verify=str(certs / "fullchain.pem"), timeout=10)
    finally:
        stop(nginx, signal.SIGQUIT)
    assert r.status_code == 200 and "items" in r.json()
