"""The job spec's `priority`, and `queue_position` / `pending_reason` over HTTP under fair share and a quota."""

from __future__ import annotations

import json

from trainyard.store.db import session_scope
from trainyard.store.workers import register_worker

from tests.support.api import make_api, problem, xor
from tests.support.fakeworker import claim


def test_priority_is_validated_stored_and_defaults_to_normal(api):
    r = api.alice.post("/jobs", json=xor(priority="urgent"))
    assert [e["loc"] for e in problem(r, 422)["errors"]] == ["priority"]
    assert api.alice.submit(xor(priority="high"))["spec"]["priority"] == "high"
    assert api.alice.submit(xor(name="plain"))["spec"]["priority"] == "normal"


def test_positions_and_reasons_follow_fair_share_and_the_quota_and_name_no_one_else(sqlite_settings):
    api = make_api(sqlite_settings, max_running_per_user=1)
    try:
        with session_scope(api.sessions) as s:
            register_worker(session=s, name="test-worker", queues=["cpu"], device="cpu", concurrency=2,
                            hostname="h", pid=1)
        alice = [api.alice.submit(xor(name=f"a{i}", priority=p))["id"]
                 for i, p in enumerate(["normal", "low", "high"])]
        claim(api, alice[0])  # alice is at her quota of 1; one worker slot is free
        bob = api.bob.submit(xor(name="b"))
        assert (bob["queue_position"], bob["pending_reason"]) == (1, "waiting for a worker on queue cpu")
        listed = {j["id"]: (j["queue_position"], j["pending_reason"])
                  for j in api.alice.get("/jobs?status=queued").get_json()["items"]}
        assert listed == {
            alice[2]: (2, "waiting for your other 1 running job (max_running_per_user is 1)"),
            alice[1]: (3, "waiting for your other 1 running job and 1 queued job of yours ahead of it "
                          "(max_running_per_user is 1)")}
        assert api.alice.get(f"/jobs/{alice[2]}").get_json()["queue_position"] == 2
        claim(api, bob["id"])  # every worker busy now; a third user's job comes before alice's held ones
        carol = api.caller("carol")
        first = carol.submit(xor(name="c"))
        assert (first["queue_position"], first["pending_reason"]) == (
            1, "next on queue cpu; every worker on it is busy")
        assert api.alice.get(f"/jobs/{alice[2]}").get_json()["queue_position"] == 2  # behind carol's
        text = json.dumps(carol.get("/jobs").get_json())
        assert not any(marker in text for marker in (*alice, bob["id"], api.alice.user_id, api.bob.user_id,
                                                     "alice", "bob"))
    finally:
        api.engine.dispose()
