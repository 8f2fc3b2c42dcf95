"""store.runs claims without a quota on SQLite and PostgreSQL: the owner, the job and the claim in one statement,
users served in turns, each job taken once under concurrent claims, a user whose jobs are all being claimed passed
over but never one whose job was not tried; a first attempt reads no checkpoint or history."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, select

from trainyard.core.spec import parse_spec
from trainyard.store.db import session_scope
from trainyard.store.jobs import create_job
from trainyard.store.models import Job
from trainyard.store import fairshare
from trainyard.store.runs import claim_job, claim_next_job, prepare_attempt
from trainyard.store.tokens import get_or_create_user

from tests.support.threads import in_threads

XOR = {"dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 2, "activation": "relu"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 5, "seed": 1}}


def submit(factory, owner: str) -> str:
    with session_scope(factory) as s:
        job, _ = create_job(session=s, owner=owner, spec=parse_spec(XOR))
        return job.id


def owners(factory, *names) -> list[str]:
    with session_scope(factory) as s:
        return [get_or_create_user(session=s, name=name).id for name in names]


class Statements:
    """The statements an engine runs while counting (BEGIN and COMMIT are not statements here)."""

    def __init__(self, engine):
        self.seen: list[str] = []
        self.counting = False
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, *_args) -> None:
        if self.counting and not statement.startswith(("BEGIN", "PRAGMA")):
            self.seen.append(statement.split(None, 1)[0].upper())


def test_a_first_attempt_is_claimed_in_one_statement_and_reads_nothing_more(session_factory):
    (a,) = owners(session_factory, "a")
    job_id = submit(session_factory, a)
    statements = Statements(session_factory.kw["bind"])
    with session_scope(session_factory) as s:
        statements.counting = True
        job = claim_next_job(session=s, device="cpu", worker="w", lease_seconds=60)
        assert prepare_attempt(session=s, job=job) is None
        statements.counting = False
        assert (job.id, job.status, job.attempts, job.worker, job.owner_id) == (job_id, "running", 1, "w", a)
        assert job.started_at is not None and job.lease_expires_at > job.started_at
    assert statements.seen in (["UPDATE"], ["WITH"])  # one statement (the fair-share CTE leads the UPDATE)
    with session_scope(session_factory) as s:
        assert s.scalar(select(Job.status).where(Job.id == job_id)) == "running"


def test_claims_without_a_quota_take_the_users_in_turns(session_factory):
    """Users with nothing running are served round robin (by id when none ever ran), whatever the submit order."""
    a, b, c = sorted(owners(session_factory, "a", "b", "c"))
    jobs = {owner: [submit(session_factory, owner) for _ in range(3)] for owner in (c, a, b)}  # oldest first: c's
    taken = []
    for _ in range(9):
        with session_scope(session_factory) as s:
            job = claim_next_job(session=s, device="cpu", worker="w", lease_seconds=60)
            taken.append((job.owner_id, job.id))
    assert taken == [(owner, jobs[owner][turn]) for turn in range(3) for owner in (a, b, c)]
    with session_scope(session_factory) as s:
        assert claim_next_job(session=s, device="cpu", worker="w", lease_seconds=60) is None


def test_concurrent_claims_without_a_quota_take_each_job_once(session_factory):
    users = owners(session_factory, "a", "b", "c")
    jobs = [submit(session_factory, users[i % 3]) for i in range(30)]
    claimed: list[str] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        while True:
            with session_scope(session_factory) as s:
                job = claim_next_job(session=s, device="cpu", worker=f"w{index}", lease_seconds=60)
                if job is None:
                    return
                with lock:
                    claimed.append(job.id)

    assert in_threads(5, work) == []
    assert sorted(claimed) == sorted(jobs)  # every job once
    with session_scope(session_factory) as s:
        assert set(s.scalars(select(Job.attempts))) == {1}
        assert set(s.scalars(select(Job.status))) == {"running"}


@pytest.mark.parametrize("db_settings", ["postgres"], indirect=True)
def test_a_user_whose_jobs_are_all_being_claimed_is_passed_over(session_factory):
    """PostgreSQL: another transaction holds the lock on the only job of the user the policy picks first; the claim
    takes the next user's job instead of waiting (SQLite serialises whole write transactions: nothing to pass)."""
    a, b = sorted(owners(session_factory, "a", "b"))  # the smaller id goes first when nothing ever ran
    a_job, b_job = submit(session_factory, a), submit(session_factory, b)
    with session_scope(session_factory) as holder:
        assert holder.scalar(select(Job.id).where(Job.id == a_job).with_for_update()) == a_job
        with session_scope(session_factory) as s:
            job = claim_next_job(session=s, device="cpu", worker="w", lease_seconds=60)
            assert job is not None and job.id == b_job
        with session_scope(session_factory) as s:
            assert claim_next_job(session=s, device="cpu", worker="w", lease_seconds=60) is None
    with session_scope(session_factory) as s:  # the lock is gone: a's job is claimed
        assert claim_next_job(session=s, device="cpu", worker="w", lease_seconds=60).id == a_job


@pytest.mark.parametrize("db_settings", ["postgres"], indirect=True)
def test_after_the_statement_claims_nothing_no_owner_is_passed_over_untried(session_factory, monkeypatch):
    """PostgreSQL: the statement picks a, whose only job another claimer holds locked, and claims nothing; that
    claimer commits before the claim asks `next_owner` again, so a has nothing queued any more and b comes next.
    b's job is tried and claimed: b is not passed over for c without a try."""
    a, b, c = sorted(owners(session_factory, "a", "b", "c"))
    a_job, b_job, c_job = (submit(session_factory, owner) for owner in (a, b, c))
    other = session_factory()
    try:
        assert claim_job(session=other, job_id=a_job, worker="other", lease_seconds=60).id == a_job  # uncommitted
        asked = []
        real_next_owner = fairshare.next_owner

        def next_owner(**kwargs):
            if not asked:
                other.commit()  # between the statement (which found a's job locked) and the fallback
            asked.append(list(kwargs["passed"]))
            return real_next_owner(**kwargs)

        monkeypatch.setattr(fairshare, "next_owner", next_owner)
        with session_scope(session_factory) as s:
            job = claim_next_job(session=s, device="cpu", worker="w", lease_seconds=60)
            assert (job.id, job.owner_id) == (b_job, b)
        assert asked[0] == []  # the fallback ran: the statement claimed nothing while a's job was locked
        with session_scope(session_factory) as s:
            assert claim_next_job(session=s, device="cpu", worker="w", lease_seconds=60).id == c_job
    finally:
        other.close()
    with session_scope(session_factory) as s:
        assert dict(s.execute(select(Job.id, Job.worker)).all()) == {a_job: "other", b_job: "w", c_job: "w"}
