"""The order in which free workers take queued jobs: fair share between users, priority, age; per-user quotas.

When a worker of queue (device) d is free it claims (store.runs.claim_next_job):

1. among the users with a job queued on d and, when `max_running_per_user` is set, fewer than that many jobs
   running on any queue: the user with the fewest jobs running on d; ties go to the user whose latest job on
   d started longest ago (never counts as longest), so users with nothing running are served round robin;
2. that user's queued job of the highest priority (high, normal, low), then the oldest.

Without a quota a claim is one statement (store.runs._claim_statement): an UPDATE of the job whose id is
`next_job_query`'s (one seek of `ix_jobs_fair_order`, FOR UPDATE SKIP LOCKED) for the owner `next_owner_query`
picks (a skip scan of the same index lists the queue's queued owners in O(owners) index seeks, each with its
running counts and latest start: few running rows, `ix_jobs_owner_device_started`). When it claims nothing, or
with a quota, the claim goes owner by owner: `next_owner`, then the UPDATE with that owner as a parameter (with a
quota, after `under_quota`, in a savepoint); only an owner whose own claim found nothing is passed over.
Nothing is kept besides the job rows, so nothing can drift out of step with them.

`QueueView` answers `queue_position` and `pending_reason` from the same state: the position is where the
job stands in the order the policy would claim the queue's jobs if nothing were submitted and nothing
ended; a reason names only counts (never another user's jobs or names).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from trainyard.store.models import QUEUED, RUNNING, Job, User
from trainyard.store.workers import list_live_workers

JOBS = Job.__table__
DEVICE = "queue_device"  # the queue's parameter (not "device": an UPDATE of jobs reserves its column names)
PRIORITIES = {"low": 0, "normal": 1, "high": 2}  # the spec's names → jobs.priority (higher is taken first)


def priority_value(name: str) -> int:
    """The stored number of a spec's `priority`."""
    return PRIORITIES[name]


@dataclass(frozen=True)
class Share:
    """One user's state on one queue: what the policy orders users by."""

    owner_id: str
    queued: int  # jobs queued on this queue
    running_here: int  # jobs running on this queue
    running_all: int  # jobs running on every queue (what the quota counts)
    last_started: datetime | None  # the latest start of one of the owner's jobs on this queue

    def key(self) -> tuple:
        """The policy's order of users (smaller first)."""
        return (self.running_here, self.last_started is not None, self.last_started or datetime.min,
                self.owner_id)


def _queued_owners():
    """A recursive CTE of the owners with jobs queued on the DEVICE parameter's queue, one index seek each (a loose
    index scan of ix_jobs_fair_order), after a first row of "" (no owner id is empty; the shares leave it out).

    Every step asks for the next owner id past the last one, the first step too: with that range condition
    PostgreSQL seeks ix_jobs_fair_order, where a plain min(owner_id) let it walk an index led by owner_id
    through every finished job of the first users until it met a queued one.
    """
    owners = select(cast(literal(""), String(32)).label("owner_id")).cte("queued_owners", recursive=True)
    later = JOBS.alias("later")
    following = (select(later.c.owner_id).where(later.c.status == QUEUED, later.c.device == device_parameter(),
                                                later.c.owner_id > owners.c.owner_id)
                 .order_by(later.c.owner_id).limit(1).scalar_subquery())
    return owners.union_all(select(following).where(owners.c.owner_id.is_not(None)))


def device_parameter():
    """The queue's parameter of the statements here (DEVICE)."""
    return bindparam(DEVICE, type_=String)


@functools.cache
def _shares_query(with_queued: bool) -> Select:
    """Each queued owner's share of the DEVICE parameter's queue (built once: it is a large statement)."""
    owners = _queued_owners()
    owner, device = owners.c.owner_id, device_parameter()

    def count(status: str, *where):
        rows = JOBS.alias()
        return select(func.count()).select_from(rows).where(rows.c.status == status, rows.c.owner_id == owner,
                                                             *(w(rows) for w in where)).scalar_subquery()

    started = JOBS.alias("started")
    columns = [
        owner.label("owner_id"),
        count(RUNNING, lambda rows: rows.c.device == device).label("running_here"),
        count(RUNNING).label("running_all"),
        select(func.max(started.c.started_at)).where(started.c.owner_id == owner, started.c.device == device)
        .scalar_subquery().label("last_started"),
    ]
    if with_queued:
        columns.append(count(QUEUED, lambda rows: rows.c.device == device).label("queued"))
    return select(*columns).where(owner.is_not(None), owner != "")


@functools.cache
def next_owner_query() -> Select:
    """`next_owner`'s statement (its parameters: `next_owner_params`), for a claim that picks the owner and
    the job in one statement (store.runs.claim_next_job)."""
    shares = _shares_query(False).subquery()
    quota = bindparam("quota", type_=Integer)  # 0: none
    return (select(shares.c.owner_id)
            .where(or_(quota == 0, shares.c.running_all < quota),
                   shares.c.owner_id.not_in(bindparam("passed", type_=String, expanding=True)))
            .order_by(shares.c.running_here, shares.c.last_started.asc().nulls_first(), shares.c.owner_id)
            .limit(1))


def next_owner(*, session: Session, device: str, max_running_per_user: int = 0,
               passed: list[str] = ()) -> str | None:
    """The user whose job the policy takes next on `device` (skipping users at quota and `passed`), or None."""
    params = next_owner_params(device=device, max_running_per_user=max_running_per_user, passed=passed)
    return session.scalar(next_owner_query(), params)


def next_owner_params(*, device: str, max_running_per_user: int = 0, passed: list[str] = ()) -> dict:
    """The parameters of `next_owner_query`."""
    return {DEVICE: device, "quota": max_running_per_user, "passed": list(passed) or [""]}


def next_job_query(*, device, owner) -> Select:
    """The id of `owner`'s next job on `device` (highest priority, then oldest), locked FOR UPDATE SKIP LOCKED on
    PostgreSQL (a concurrent claimer takes the job after it instead of waiting; SQLite's write transactions exclude
    each other whole). `device` and `owner` are expressions: a claim's UPDATE takes it as a subquery."""
    picked = aliased(Job, name="picked")  # never correlated with an UPDATE of jobs around it
    return (select(picked.id).where(picked.status == QUEUED, picked.device == device, picked.owner_id == owner,
                                    picked.cancel_requested.is_(False))
            .order_by(picked.priority.desc(), picked.created_at, picked.id).limit(1)
            .with_for_update(skip_locked=True))


def under_quota(*, session: Session, owner: str, max_running_per_user: int) -> bool:
    """Whether `owner` may start another job; holds a lock on the user's row until the transaction ends.

    The lock (FOR NO KEY UPDATE: a concurrent submit's foreign-key check is not blocked) makes concurrent
    claims for one user take turns, so each counts the others' committed claims: the quota holds at every
    moment, not just on average.
    """
    session.execute(select(User.id).where(User.id == owner).with_for_update(key_share=True))
    return running_jobs(session=session, owner=owner) < max_running_per_user


def running_jobs(*, session: Session, owner: str) -> int:
    """How many of `owner`'s jobs are running, on every queue."""
    return session.scalar(select(func.count()).select_from(Job).where(Job.owner_id == owner, Job.status == RUNNING))


def queue_shares(*, session: Session, device: str) -> dict[str, Share]:
    """Every user with jobs queued on `device`, by owner id."""
    rows = session.execute(_shares_query(True), {DEVICE: device}).all()
    return {r.owner_id: Share(r.owner_id, r.queued, r.running_here, r.running_all, r.last_started) for r in rows}


def held_devices(*, session: Session, owner: str, max_running_per_user: int) -> list[tuple[str, str]]:
    """`(job id, device)` of `owner`'s next queued job on each queue, when a quota may have held them back and the
    owner is now under it: a job of theirs just stopped running, and a message for each is due (its own may have
    been consumed while the owner was at quota). Empty without a quota: nothing else holds a job back."""
    if not max_running_per_user or running_jobs(session=session, owner=owner) >= max_running_per_user:
        return []
    found = []
    for device in session.scalars(select(Job.device).where(Job.owner_id == owner, Job.status == QUEUED)
                                  .group_by(Job.device).order_by(Job.device)):
        job_id = session.scalar(select(Job.id).where(Job.status == QUEUED, Job.device == device,
                                                     Job.owner_id == owner)
                                .order_by(Job.priority.desc(), Job.created_at, Job.id).limit(1))
        if job_id is not None:
            found.append((job_id, device))
    return found


def _claims_before(other: Share, me: Share, level: int, cap: int) -> int:
    """How many of `other`'s jobs the policy claims before `me` (the user) is served at running count `level`.

    Each claim raises its user's running count by one and makes its start the latest, so users are served
    level by level; within a level, the users that were there before any claim come first (more running now
    first, then by the policy's key), then those raised to it. `cap`: how many `other` can be given at all.
    """
    claims = max(0, level - other.running_here)
    first = other.running_here > me.running_here or (other.running_here == me.running_here and other.key() < me.key())
    if other.running_here <= level and first:
        claims += 1
    return min(cap, claims)


class QueueView:
    """Queue positions and pending reasons for the jobs of one request (each queue's state is read once)."""

    def __init__(self, session: Session, *, live_seconds: float, max_running_per_user: int = 0):
        self.session, self.live_seconds, self.quota = session, live_seconds, max_running_per_user
        self._shares: dict[str, dict[str, Share]] = {}
        self._workers: dict[str, list] = {}
        self._own: dict[str, tuple[int, int]] = {}

    def shares(self, device: str) -> dict[str, Share]:
        if device not in self._shares:
            self._shares[device] = queue_shares(session=self.session, device=device)
        return self._shares[device]

    def workers(self, device: str) -> list:
        if device not in self._workers:
            self._workers[device] = [w for w in list_live_workers(session=self.session, live_seconds=self.live_seconds)
                                     if device in w.queues]
        return self._workers[device]

    def _ahead_of_own(self, job: Job) -> tuple[int, int]:
        """`(ahead, higher)`: the owner's queued jobs on the job's queue taken before it, and of those the ones of
        a higher priority."""
        if job.id in self._own:
            return self._own[job.id]
        mine = and_(Job.status == QUEUED, Job.device == job.device, Job.owner_id == job.owner_id,
                    Job.id != job.id)
        higher = Job.priority > job.priority
        earlier = and_(Job.priority == job.priority,
                       or_(Job.created_at < job.created_at, and_(Job.created_at == job.created_at, Job.id < job.id)))
        row = self.session.execute(select(func.count().filter(or_(higher, earlier)), func.count().filter(higher))
                                   .select_from(Job).where(mine)).one()
        self._own[job.id] = row[0], row[1]
        return self._own[job.id]

    def _running(self, job: Job) -> int:
        me = self.shares(job.device).get(job.owner_id)
        return me.running_all if me is not None else 0

    def held(self, job: Job) -> bool:
        """Whether the owner's quota keeps the queued job from starting until one of their running jobs ends."""
        return bool(job.status == QUEUED and self.quota and
                    self._ahead_of_own(job)[0] >= self.quota - self._running(job))

    def position(self, job: Job) -> int | None:
        """1 for the job the queue's next free worker takes, 2 for the one after…; None unless queued.

        A job its owner's quota holds back is placed where it would be if the quota allowed it.
        """
        if job.status != QUEUED:
            return None
        shares = self.shares(job.device)
        me = shares.get(job.owner_id)
        if me is None:  # it stopped being queued since it was read
            return None
        ahead, _ = self._ahead_of_own(job)
        level = me.running_here + ahead
        for other in shares.values():
            if other.owner_id != me.owner_id:
                cap = other.queued if not self.quota else min(other.queued, max(0, self.quota - other.running_all))
                ahead += _claims_before(other, me, level, cap)
        return ahead + 1

    def reason(self, job: Job) -> str | None:
        """Why a queued job waits (see README "Sharing the fleet"); None unless queued."""
        if job.status != QUEUED:
            return None
        workers = self.workers(job.device)
        if not workers:
            return f"no live worker listens on queue {job.device}"
        ahead, higher = self._ahead_of_own(job)
        running = self._running(job)
        if self.quota and ahead >= self.quota - running:
            held = [f"your other {_jobs(running, 'running')}"] if running else []
            held += [f"{_jobs(ahead, 'queued')} of yours ahead of it"] if ahead else []
            return f"waiting for {' and '.join(held)} (max_running_per_user is {self.quota})"
        if not all(len(w.current_jobs) >= w.concurrency for w in workers):
            return f"waiting for a worker on queue {job.device}"
        if higher:
            return f"behind {_jobs(higher, 'queued')} of yours of higher priority; every worker on queue " \
                   f"{job.device} is busy"
        before = (self.position(job) or 1) - 1
        if not before:
            return f"next on queue {job.device}; every worker on it is busy"
        return f"every worker on queue {job.device} is busy; {_jobs(before)} ahead of it in the fair-share order"


def _jobs(n: int, kind: str = "") -> str:
    return f"{n} {kind + ' ' if kind else ''}job{'' if n == 1 else 's'}"
