"""Submitting a job on a dataset while the dataset is deleted: one of the two wins, the other gets the store's
409-mapped error (DatasetInUse) or DatasetNotFound — never a foreign-key violation (red-team finding 50).

Two sessions are interleaved by hand: one holds its transaction open, the other runs in a thread. On PostgreSQL
the test waits until that thread is blocked on a row lock, so the interleaving is exactly the racy one; on SQLite
the second writer waits for the write lock, and the outcome is the same.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from trainyard.core.spec import parse_spec
from trainyard.store.datasets import create_dataset, delete_dataset
from trainyard.store.db import session_scope
from trainyard.store.errors import DatasetInUse, DatasetNotFound
from trainyard.store.jobs import create_job
from trainyard.store.models import Dataset, Job

CSV = b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"


def _spec(dataset_id: str):
    return parse_spec({"dataset": {"id": dataset_id}, "model": {"layers": [{"type": "dense", "units": 1}]}})


@pytest.fixture
def dataset_id(session_factory, user_id) -> str:
    with session_scope(session_factory) as s:
        return create_dataset(session=s, owner=user_id, name="xor.csv", format="csv", data=CSV,
                              task="classification", n_samples=4, n_features=2, n_classes=2, target="y").id


def _in_thread(session_factory, work) -> tuple[threading.Thread, list]:
    """Run `work(session)` in its own committed transaction on a thread; the list receives its result or error."""
    outcome: list = []

    def run():
        try:
            with session_scope(session_factory) as s:
                outcome.append(work(s))
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _wait_until_blocked(session_factory, thread: threading.Thread) -> None:
    """On PostgreSQL, until some session of this database waits on a lock (the thread's); SQLite has no such view."""
    with session_factory() as probe:
        if probe.bind.dialect.name != "postgresql":
            return
        for _ in range(200):
            waiting = probe.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND wait_event_type = 'Lock'"))
            probe.rollback()
            if waiting or not thread.is_alive():
                break
            thread.join(0.05)
    assert thread.is_alive(), "the second session did not wait for the first"


def test_a_delete_during_a_submit_waits_and_finds_the_dataset_in_use(session_factory, user_id, dataset_id):
    submit = session_factory()
    job, created = create_job(session=submit, owner=user_id, spec=_spec(dataset_id))  # not committed yet
    thread, outcome = _in_thread(session_factory,
                                 lambda s: delete_dataset(session=s, owner=user_id, dataset_id=dataset_id))
    _wait_until_blocked(session_factory, thread)
    submit.commit()
    submit.close()
    thread.join(30)
    assert created and len(outcome) == 1 and isinstance(outcome[0], DatasetInUse), outcome
    assert str(outcome[0]) == f"dataset {dataset_id} is used by job {job.id}, which is not finished"
    with session_factory() as s:
        assert s.scalar(select(Job.dataset_id).where(Job.id == job.id)) == dataset_id
        assert s.get(Dataset, dataset_id) is not None


def test_a_submit_during_a_delete_waits_and_finds_no_dataset(session_factory, user_id, dataset_id):
    delete = session_factory()
    delete_dataset(session=delete, owner=user_id, dataset_id=dataset_id)  # not committed yet
    thread, outcome = _in_thread(session_factory, lambda s: create_job(session=s, owner=user_id,
                                                                       spec=_spec(dataset_id)))
    _wait_until_blocked(session_factory, thread)
    delete.commit()
    delete.close()
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], DatasetNotFound), outcome
    with session_factory() as s:
        assert s.scalars(select(Job.id)).all() == [] and s.get(Dataset, dataset_id) is None
