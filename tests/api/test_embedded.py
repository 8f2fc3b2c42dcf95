"""`trainyard up`: migrates, starts API + worker + reconciler, trains the README's example, stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import requests

from trainyard.api.serve import gunicorn_options

from tests.support import ROOT
from tests.support.processes import free_port, settings_env, wait_for


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_serves_trains_and_stops_cleanly(db_settings, tmp_path):
    if db_settings.is_sqlite:  # no configuration at all: everything under TRAINYARD_HOME
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
        env.update(TRAINYARD_HOME=str(tmp_path / "var"), PYTHONPATH=str(ROOT))
    else:  # TRAINYARD_DATABASE_URL / TRAINYARD_BROKER_URL are honoured
        env = settings_env(db_settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    log = open(tmp_path / "up.log", "wb")
    up = subprocess.Popen([sys.executable, "-m", "trainyard.client.cli", "up", "--port", str(port)], env=env, cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=log)
    try:
        banner = up.stdout.readline().decode()
        while "trainyard is up" not in banner and up.poll() is None:
            banner = up.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}/api/v1" in banner, (tmp_path / "up.log").read_text()
        rest = "".join(up.stdout.readline().decode() for _ in range(3))
        home = tmp_path / "var" if db_settings.is_sqlite else db_settings.home
        token = (home / "token").read_text().strip()
        assert f"token: {home / 'token'}" in rest and "--data @examples/xor_relu_3.json" in rest
        assert requests.get(f"{base}/health", timeout=5).json()["status"] == "ok"
        auth = {"Authorization": f"Bearer {token}"}
        spec = json.loads((ROOT / "examples" / "xor_relu.json").read_text())
        job = requests.post(f"{base}/jobs", json=spec, headers=auth, timeout=10).json()
        done = wait_for(lambda: (j := requests.get(f"{base}/jobs/{job['id']}", headers=auth, timeout=5).json())
                        ["status"] in ("succeeded", "failed") and j, 60, "the example to train")
        assert done["status"] == "succeeded", done
        [worker] = requests.get(f"{base}/workers", headers=auth, timeout=5).json()["items"]
        # An open event stream holds one gunicorn thread, not the worker: other requests still answer.
        spec["training"]["epochs"] = 500_000
        long = requests.post(f"{base}/jobs", json=spec, headers=auth, timeout=10).json()
        with requests.get(f"{base}/jobs/{long['id']}/events", headers=auth, stream=True, timeout=30) as stream:
            lines = stream.iter_lines(decode_unicode=True)
            assert next(line for line in lines if line.startswith("event: progress"))  # it is running
            assert requests.get(f"{base}/health", timeout=5).status_code == 200
            assert requests.post(f"{base}/jobs/{long['id']}/cancel", headers=auth, timeout=5).status_code == 202
            last = [line for line in lines if line.startswith("data: {\"id\"")][-1]  # the stream ends by itself
        assert json.loads(last.removeprefix("data: "))["status"] == "cancelled"
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(30)
        up.stdout.close()
        log.close()
    assert code == 0
    assert not alive(worker["pid"])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the API is gone too


def test_serve_runs_gevent_gunicorn_workers_with_the_serving_settings():
    from trainyard.store.settings import Settings

    opts = gunicorn_options(host="127.0.0.1", port=8000, workers=2,
                            settings=Settings(api_max_connections=321, header_timeout_seconds=7.0))
    assert (opts["worker_class"], opts["workers"], opts["bind"]) == ("trainyard.api.gevent_worker.ApiWorker", 2,
                                                                     "127.0.0.1:8000")
    assert (opts["worker_connections"], opts["keepalive"]) == (321, 7)


def test_up_refuses_a_port_that_is_in_use(tmp_path, monkeypatch, capsys):
    from trainyard.api.embedded import up

    monkeypatch.setenv("TRAINYARD_HOME", str(tmp_path / "home"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert up(host="127.0.0.1", port=port) == 1
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()  # nothing was created for a service that never started
