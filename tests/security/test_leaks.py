"""Small leaks (issue 12 item 8; red team #8, #56): /workers shows a user only their own jobs and no host or pid
(those go to operators), worker names say nothing about either, and the embedded files are readable by their owner
only."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys

import pytest

from trainyard.store.db import session_scope
from trainyard.store.workers import register_worker

from tests.support import ROOT
from tests.support.api import XOR, make_api
from tests.support.fakeworker import claim
from tests.support.processes import start_worker, stop_process, wait_for

HOST, PID = "gpu-box-7.internal", 424242


@pytest.fixture
def with_operator(db_settings):
    """alice and bob are users; carol is an operator (operator_users)."""
    api = make_api(db_settings, operator_users=" carol ,dave")
    api.carol = api.caller("carol")
    yield api
    api.engine.dispose()


def test_workers_show_each_user_only_their_own_jobs_and_no_host_or_pid(with_operator):
    api = with_operator
    with session_scope(api.sessions) as s:
        register_worker(session=s, name="cpu-w1", queues=["cpu"], device="cpu", concurrency=2, hostname=HOST, pid=PID)
    alice_job, bob_job = api.alice.submit()["id"], api.bob.submit()["id"]
    claim(api, alice_job, worker="cpu-w1")
    claim(api, bob_job, worker="cpu-w1")

    for caller, mine in ((api.alice, alice_job), (api.bob, bob_job)):
        r = caller.get("/workers")
        [w] = r.get_json()["items"]
        assert (w["name"], w["current_job"], w["current_jobs"]) == ("cpu-w1", mine, [mine])
        assert "hostname" not in w and "pid" not in w
        text = r.get_data(as_text=True)
        assert HOST not in text and str(PID) not in text
        assert (alice_job if mine == bob_job else bob_job) not in text  # not the other user's job id

    [w] = api.carol.get("/workers").get_json()["items"]
    assert (w["hostname"], w["pid"]) == (HOST, PID)
    assert w["current_jobs"] == [alice_job, bob_job] and w["current_job"] == alice_job


def test_operator_users_is_empty_by_default_so_nobody_sees_hosts(db_settings):
    api = make_api(db_settings)
    with session_scope(api.sessions) as s:
        register_worker(session=s, name="cpu-w1", queues=["cpu"], device="cpu", concurrency=1, hostname=HOST, pid=PID)
    assert api.settings.operator_users == ""
    for caller in (api.alice, api.bob):
        [w] = caller.get("/workers").get_json()["items"]
        assert "hostname" not in w and "pid" not in w
    api.engine.dispose()


def test_a_real_workers_name_names_neither_its_host_nor_its_pid(sqlite_settings):
    api = make_api(sqlite_settings, operator_users="carol")
    carol = api.caller("carol")
    worker = start_worker(api.settings)
    try:
        job = api.alice.submit(XOR)
        done = wait_for(lambda: (j := api.alice.get(f"/jobs/{job['id']}").get_json())["status"] == "succeeded" and j,
                        90, "the job to succeed")
        [w] = carol.get("/workers").get_json()["items"]
    finally:
        stop_process(worker)
        api.engine.dispose()
    assert w["pid"] == worker.pid and w["hostname"] == socket.gethostname()
    assert done["worker"] == w["name"] and w["name"].startswith("cpu-")
    for shown in (done["worker"], w["name"]):
        assert str(worker.pid) not in shown and socket.gethostname() not in shown


# --- the embedded files (red team #56) ---------------------------------------------------------


def mode(path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture
def loose_umask():
    """A umask that would leave new files world-readable (022 is the common default); restored afterwards."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_embedded_database_broker_and_blob_cache_are_owner_only(sqlite_settings, loose_umask):
    from trainyard.store.migrate import upgrade
    from trainyard.worker.app import broker_transport_options
    from trainyard.worker.runner import _write_cache

    home = sqlite_settings.home
    assert not home.exists()
    upgrade(sqlite_settings)  # creates home and the database, as `trainyard up` does first
    api = make_api(sqlite_settings)
    api.alice.submit()
    broker_transport_options(sqlite_settings)  # the filesystem broker's folders, as every part makes them
    _write_cache(sqlite_settings, "ab" * 32, b"uploaded rows")  # the worker's blob cache
    db = home / "trainyard.db"
    with api.engine.connect() as conn:  # while a connection is open, SQLite keeps its WAL and shared memory
        conn.exec_driver_sql("SELECT count(*) FROM jobs").scalar()
        files = {p.name: oct(mode(p)) for p in (db, *(db.with_name(db.name + s) for s in ("-wal", "-shm")))}
    api.engine.dispose()

    assert files == dict.fromkeys(["trainyard.db", "trainyard.db-wal", "trainyard.db-shm"], oct(0o600))
    folders = [home, home / "broker", home / "broker" / "queue", home / "broker" / "processed",
               home / "broker" / "control", home / "cache", home / "cache" / "blobs"]
    assert {str(p.relative_to(home.parent)): oct(mode(p)) for p in folders} == {
        str(p.relative_to(home.parent)): oct(0o700) for p in folders}
    assert mode(home / "cache" / "blobs" / ("ab" * 32)) == 0o600


def test_files_left_readable_by_an_earlier_version_are_tightened(sqlite_settings, loose_umask):
    from trainyard.store.db import make_engine
    from trainyard.worker.app import broker_transport_options

    home = sqlite_settings.home
    (home / "broker").mkdir(parents=True, mode=0o755)
    db = home / "trainyard.db"
    for p in (db, db.with_name(db.name + "-wal")):
        p.touch(mode=0o644)
    make_engine(sqlite_settings).dispose()
    broker_transport_options(sqlite_settings)
    assert (mode(db), mode(db.with_name(db.name + "-wal")), mode(home / "broker")) == (0o600, 0o600, 0o700)


def test_trainyard_up_leaves_nothing_readable_by_other_users(tmp_path):
    """A real `trainyard up` under umask 022: its home, database, broker and token are owner-only."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    env.update(TRAINYARD_HOME=str(tmp_path / "var"), PYTHONPATH=str(ROOT))
    with open(tmp_path / "up.log", "wb") as log:
        up = subprocess.Popen([sys.executable, "-m", "trainyard.client.cli", "up", "--port", str(port)], env=env, cwd=tmp_path,
                              stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(0o022))
    try:
        wait_for(lambda: up.poll() is not None or b"trainyard is up" in (tmp_path / "up.log").read_bytes(), 90,
                 "trainyard up to be serving")
        assert up.poll() is None, (tmp_path / "up.log").read_text()
        home = tmp_path / "var"
        with sqlite3.connect(home / "trainyard.db") as conn:  # an open connection keeps the WAL and shared memory
            conn.execute("SELECT count(*) FROM jobs").fetchone()
            files = [home / "trainyard.db", home / "trainyard.db-wal", home / "trainyard.db-shm", home / "token"]
            folders = [home, home / "broker", home / "broker" / "queue"]
            modes = {p.name: oct(mode(p)) for p in files + folders}
        conn.close()
        assert modes == {**{p.name: oct(0o600) for p in files}, **{p.name: oct(0o700) for p in folders}}
    finally:
        stop_process(up, timeout=30)
