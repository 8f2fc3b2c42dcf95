"""Small leaks (issue 12 item 8; red team #8, #56): /workers shows a user only their own jobs and no host or pid
(those go to operators), worker names say nothing about either, and the embedded files are readable by their owner
only."""

from __future__ import annotations

import socket

import pytest
from apitest import XOR, claim, make_api, start_worker, stop_process, wait_for

from store.db import session_scope
from store.workers import register_worker

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
