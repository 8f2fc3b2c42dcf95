"""trainyard.store.fairshare and store.runs.claim_next_job on SQLite and PostgreSQL: which job a free worker claims, positions
and reasons that predict it, quotas that hold under concurrent claims, and the messages that wake held jobs."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from trainyard.core.spec import parse_spec
from trainyard.store.db import session_scope
from trainyard.store.fairshare import QueueView, held_devices
from trainyard.store.jobs import create_job, get_job
from trainyard.store.models import RUNNING, SUCCEEDED, Job, utcnow
from trainyard.store.runs import claim_next_job, jobs_to_republish
from trainyard.store.tokens import get_or_create_user
from trainyard.store.workers import register_worker

from tests.support.threads import in_threads

XOR = {"dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 2, "activation": "relu"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 5, "seed": 1}}


def users(factory, *names) -> list[str]:
    with session_scope(factory) as s:
        return [get_or_create_user(session=s, name=name).id for name in names]


def submit(factory, owner, *, priority=None, device="cpu", name=None) -> str:
    doc = {**XOR, "device": device, "name": name}
    if priority is not None:
        doc["priority"] = priority
    with session_scope(factory) as s:
        job, _ = create_job(session=s, owner=owner, spec=parse_spec(doc))
        return job.id


def claim_next(factory, device="cpu", quota=0, worker="w") -> str | None:
    with session_scope(factory) as s:
        job = claim_next_job(session=s, device=device, worker=worker, lease_seconds=60, max_running_per_user=quota)
        return None if job is None else job.id


def finish(factory, job_id) -> None:
    with session_scope(factory) as s:
        s.execute(update(Job).where(Job.id == job_id).values(status=SUCCEEDED, finished_at=utcnow()))


def positions(factory, quota=0, live_seconds=60) -> dict[str, int]:
    with session_scope(factory) as s:
        view = QueueView(s, live_seconds=live_seconds, max_running_per_user=quota)
        return {j.id: view.position(j) for j in s.scalars(select(Job).where(Job.status == "queued"))}


def reasons(factory, owner, quota=0) -> dict[str, str]:
    with session_scope(factory) as s:
        view = QueueView(s, live_seconds=60, max_running_per_user=quota)
        return {j.id: view.reason(j) for j in s.scalars(select(Job).where(Job.status == "queued",
                                                                            Job.owner_id == owner))}


def test_the_spec_priority_is_stored_and_checked(session_factory, user_id):
    low, default = submit(session_factory, user_id, priority="low"), submit(session_factory, user_id)
    with session_scope(session_factory) as s:
        assert [(get_job(session=s, owner=user_id, job_id=j).priority,
                 get_job(session=s, owner=user_id, job_id=j).spec["priority"]) for j in (low, default)] == [
            (0, "low"), (1, "normal")]
    with pytest.raises(Exception) as info:
        parse_spec({**XOR, "priority": "urgent"})
    assert "priority" in str(info.value) and "'high'" in str(info.value)


def test_users_take_turns_then_priority_then_age(session_factory):
    a, b = users(session_factory, "a", "b")
    a_jobs = [submit(session_factory, a, name=f"a{i}") for i in range(4)]
    b_low = submit(session_factory, b, priority="low")
    b_high = submit(session_factory, b, priority="high")
    predicted = positions(session_factory)
    order = [claim_next(session_factory) for _ in range(7)]
    # Nothing runs and nothing ever started: the smaller user id first; then the user with fewer running jobs,
    # then the one whose latest start is older (round robin); a user's own jobs by priority, then age.
    if a < b:
        assert order == [a_jobs[0], b_high, a_jobs[1], b_low, a_jobs[2], a_jobs[3], None]
    else:
        assert order == [b_high, a_jobs[0], b_low, a_jobs[1], a_jobs[2], a_jobs[3], None]
    assert predicted == {j: i + 1 for i, j in enumerate(order[:6])}


def test_a_user_with_fewer_running_jobs_goes_first_however_long_the_other_queue(session_factory):
    a, b = users(session_factory, "a", "b")
    a_jobs = [submit(session_factory, a) for _ in range(30)]
    assert [claim_next(session_factory) for _ in range(2)] == a_jobs[:2]  # both workers busy with a's jobs
    b_job = submit(session_factory, b)
    assert positions(session_factory)[b_job] == 1 and positions(session_factory)[a_jobs[2]] == 2
    finish(session_factory, a_jobs[0])  # a running job ends: the free worker takes b's job
    assert claim_next(session_factory) == b_job
    assert claim_next(session_factory) == a_jobs[2]


@pytest.mark.parametrize("quota", [0, 2])
def test_positions_predict_the_claim_order(session_factory, quota):
    """Random queues, running jobs on both devices and earlier starts: each position is the claim that takes it,
    and a job a quota holds back is not claimed."""
    rng = random.Random(14 + quota)
    owners = users(session_factory, *[f"u{i}" for i in range(5)])
    with session_scope(session_factory) as s:  # running and finished jobs with assorted starts
        for owner in owners:
            for _ in range(rng.randrange(3)):
                document = {**XOR, "device": rng.choice(["cpu", "gpu"])}
                job, _ = create_job(session=s, owner=owner, spec=parse_spec(document))
                s.flush()
                started = utcnow() - timedelta(seconds=rng.randrange(99))
                s.execute(update(Job).where(Job.id == job.id).values(status=rng.choice([RUNNING, SUCCEEDED]),
                                                                      started_at=started))
    for _ in range(25):
        submit(session_factory, rng.choice(owners), priority=rng.choice(["low", "normal", "high"]),
               device=rng.choice(["cpu", "cpu", "gpu"]) if not quota else "cpu")  # (a claim on one queue counts
        # towards the quota on every other: a position says where a job stands if no other queue claims meanwhile)
    predicted = positions(session_factory, quota)
    with session_scope(session_factory) as s:
        view = QueueView(s, live_seconds=60, max_running_per_user=quota)
        queued = list(s.scalars(select(Job).where(Job.status == "queued")))
        held = {j.id for j in queued if view.held(j)}
        devices = {j.id: j.device for j in queued}
    assert bool(held) == bool(quota)
    for device in ("cpu", "gpu"):
        order = []
        while (job_id := claim_next(session_factory, device, quota)) is not None:
            order.append(job_id)
        expected = {j: p for j, p in predicted.items() if devices[j] == device and j not in held}
        assert {j: order.index(j) + 1 for j in expected} == expected
        assert set(order) == set(expected)  # a job the quota holds is not claimed


def test_quota_holds_back_a_users_jobs_and_says_so(session_factory):
    a, b = users(session_factory, "a", "b")
    a_jobs = [submit(session_factory, a) for _ in range(4)]
    with session_scope(session_factory) as s:
        register_worker(session=s, name="w", queues=["cpu"], device="cpu", concurrency=3, hostname="h", pid=1)
    assert [claim_next(session_factory, quota=2) for _ in range(3)] == [*a_jobs[:2], None]
    with session_scope(session_factory) as s:
        assert held_devices(session=s, owner=a, max_running_per_user=2) == []  # still at its quota
    assert reasons(session_factory, a, quota=2) == {
        a_jobs[2]: "waiting for your other 2 running jobs (max_running_per_user is 2)",
        a_jobs[3]: "waiting for your other 2 running jobs and 1 queued job of yours ahead of it "
                   "(max_running_per_user is 2)"}
    b_job = submit(session_factory, b)
    assert positions(session_factory, quota=2)[b_job] == 1
    assert claim_next(session_factory, quota=2) == b_job  # the quota holds a back, not b
    finish(session_factory, a_jobs[0])
    with session_scope(session_factory) as s:  # a job of a's ended: a message for its next queued job is due
        assert held_devices(session=s, owner=a, max_running_per_user=2) == [(a_jobs[2], "cpu")]
        assert held_devices(session=s, owner=a, max_running_per_user=0) == []  # no quota: nothing is ever held
    assert claim_next(session_factory, quota=2) == a_jobs[2]
    assert claim_next(session_factory, quota=2) is None


def test_reasons_name_priorities_and_counts_only(session_factory):
    a, b = users(session_factory, "a", "b")
    assert reasons(session_factory, a) == {}
    high = [submit(session_factory, a, priority="high") for _ in range(2)]
    normal = submit(session_factory, a)
    assert set(reasons(session_factory, a).values()) == {"no live worker listens on queue cpu"}
    with session_scope(session_factory) as s:
        register_worker(session=s, name="w", queues=["cpu"], device="cpu", concurrency=1, hostname="h", pid=1)
    assert set(reasons(session_factory, a).values()) == {"waiting for a worker on queue cpu"}  # a free worker
    b_running, b_queued = submit(session_factory, b), submit(session_factory, b)
    with session_scope(session_factory) as s:
        s.execute(update(Job).where(Job.id == b_running).values(status=RUNNING, worker="w", started_at=utcnow()))
    # a runs nothing, b one job: a's first, then b's (its running job started before a's will), then a's.
    assert positions(session_factory) == {high[0]: 1, b_queued: 2, high[1]: 3, normal: 4}
    assert reasons(session_factory, a) == {
        high[0]: "next on queue cpu; every worker on it is busy",
        high[1]: "every worker on queue cpu is busy; 2 jobs ahead of it in the fair-share order",
        normal: "behind 2 queued jobs of yours of higher priority; every worker on queue cpu is busy"}
    assert reasons(session_factory, b) == {
        b_queued: "every worker on queue cpu is busy; 1 job ahead of it in the fair-share order"}
    assert not any(a in text or "high" in text for text in reasons(session_factory, b).values())


def test_concurrent_claims_take_each_job_once_and_never_pass_the_quota(session_factory):
    owners = users(session_factory, "a", "b", "c")
    jobs = [submit(session_factory, owners[i % 3]) for i in range(36)]
    peak, claimed = {}, []
    lock = threading.Lock()

    def work(index: int) -> None:
        while (job_id := claim_next(session_factory, quota=2, worker=f"w{index}")) is not None:
            with session_scope(session_factory) as s:  # what every other process may see now
                job = s.get(Job, job_id)
                running = s.scalar(select(func.count()).select_from(Job).where(
                    Job.owner_id == job.owner_id, Job.status == RUNNING))
            with lock:
                claimed.append(job_id)
                peak[job.owner_id] = max(peak.get(job.owner_id, 0), running)
            finish(session_factory, job_id)

    assert in_threads(6, work) == []
    assert sorted(claimed) == sorted(jobs)  # every job once
    assert max(peak.values()) <= 2
    with session_scope(session_factory) as s:
        assert set(s.scalars(select(Job.attempts))) == {1}


def test_republish_sends_one_message_per_free_slot_and_none_for_held_jobs(session_factory):
    a, b = users(session_factory, "a", "b")
    a_jobs = [submit(session_factory, a) for _ in range(5)]
    b_job = submit(session_factory, b)
    with session_scope(session_factory) as s:
        register_worker(session=s, name="w", queues=["cpu"], device="cpu", concurrency=3, hostname="h", pid=1)
        s.execute(update(Job).values(published_at=utcnow() - timedelta(minutes=5)))
        s.execute(update(Job).where(Job.id == a_jobs[0]).values(status=RUNNING, worker="w"))
    with session_scope(session_factory) as s:  # two free slots: two messages, the oldest jobs
        assert [j.id for j in jobs_to_republish(session=s, unclaimed_seconds=30, live_seconds=60)] == a_jobs[1:3]
    with session_scope(session_factory) as s:
        s.execute(update(Job).values(published_at=utcnow() - timedelta(minutes=5)))
    with session_scope(session_factory) as s:  # a is at its quota of 1: only b's job may start
        assert [j.id for j in jobs_to_republish(session=s, unclaimed_seconds=30, live_seconds=60,
                                                max_running_per_user=1)] == [b_job]


def test_a_job_the_reconciler_fails_sends_a_message_for_its_owners_held_job(migrated_settings, session_factory):
    from trainyard.worker.app import create_celery
    from trainyard.worker.reconciler import reconcile_once

    settings = migrated_settings.replace(max_running_per_user=1, max_attempts=1)
    (a,) = users(session_factory, "a")
    lost, held = submit(session_factory, a), submit(session_factory, a)
    assert claim_next(session_factory, quota=1) == lost
    with session_scope(session_factory) as s:  # its worker vanished on its last attempt
        s.execute(update(Job).where(Job.id == lost).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    counts = reconcile_once(settings=settings, factory=session_factory, celery=create_celery(settings))
    assert (counts["failed"], counts["republished"], counts["sent"]) == (1, 0, 1)  # no worker idles: no republish
    assert claim_next(session_factory, quota=1) == held
