"""The worker's checkpoints stay within max_checkpoint_bytes_per_minute (finding #57: 588 MB written per epoch), on
SQLite and PostgreSQL: bytes written are counted at the database call, which still runs."""

from __future__ import annotations

import pytest

import trainyard.worker.runner
from trainyard.core.spec import parse_spec
from trainyard.store.db import session_scope
from trainyard.store.jobs import create_job, get_job
from trainyard.worker.runner import run_job

pytestmark = pytest.mark.timeout(60)

XOR = {"dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 40, "batch_size": 4, "seed": 1, "checkpoint_every": 1}}


@pytest.fixture
def written(monkeypatch) -> list[tuple[int, int]]:
    """(epoch, bytes) of every checkpoint the runner saves; the real save runs."""
    saved: list[tuple[int, int]] = []
    real = trainyard.worker.runner.save_checkpoint

    def counting(*, session, job_id, attempt, epoch, state):
        saved.append((epoch, len(state)))
        return real(session=session, job_id=job_id, attempt=attempt, epoch=epoch, state=state)

    monkeypatch.setattr(trainyard.worker.runner, "save_checkpoint", counting)
    return saved


def run(settings, factory, owner) -> str:
    with session_scope(factory) as session:
        job, _ = create_job(session=session, owner=owner, spec=parse_spec(XOR))
    assert run_job(settings=settings, factory=factory, job_id=job.id, worker="w") == "succeeded"
    with session_scope(factory) as session:
        return get_job(session=session, owner=owner, job_id=job.id).epoch


def test_a_small_model_checkpoints_every_epoch_by_default(migrated_settings, session_factory, user_id, written):
    assert run(migrated_settings, session_factory, user_id) == 40
    assert [epoch for epoch, _ in written] == list(range(1, 41))


def test_checkpoints_over_the_budget_are_skipped_and_the_last_is_written(migrated_settings, session_factory, user_id,
                                                                          written):
    # 1 byte a minute: the first checkpoint (a few KB) spends days of it, so none other is due before the last
    # epoch's, whatever the clock says during this run.
    settings = migrated_settings.replace(max_checkpoint_bytes_per_minute=1)
    assert run(settings, session_factory, user_id) == 40
    assert [epoch for epoch, _ in written] == [1, 40]
