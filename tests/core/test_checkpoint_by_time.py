"""A worker checkpoints by time as well as by `checkpoint_every` (issue 13 §3: Ctrl-C of `make run` restarted running
jobs from epoch 0): at most `checkpoint_seconds` of training is lost when a worker stops, and resuming goes on from
there; `trainyard up` says on shutdown what happens to the jobs it stops."""

from __future__ import annotations

import numpy as np
import pytest

from trainyard.core.callbacks import Callbacks
from trainyard.core.job import train_job
from trainyard.core.spec import parse_spec
from trainyard.store.db import session_scope
from trainyard.store.jobs import create_job
from trainyard.store.runs import claim_job
from trainyard.store.settings import SettingsError, load_settings

XOR = {"dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 10, "batch_size": 4, "seed": 1}}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def train(spec: dict, clock: Clock, every_seconds: float | None, resume: bytes | None = None, budget=None):
    """Train with each epoch taking 10 s on `clock`; (epochs checkpointed, their states, history)."""
    written: list[tuple[int, bytes]] = []

    def on_epoch(row):
        clock.now += 10.0

    callbacks = Callbacks(on_epoch=on_epoch, on_checkpoint=lambda epoch, state: written.append((epoch, state)),
                          resume=resume, every_seconds=every_seconds, clock=clock, want_checkpoint=budget)
    result = train_job(parse_spec(spec), callbacks)
    return [e for e, _ in written], dict(written), result


def test_without_checkpoint_every_a_job_is_checkpointed_every_30_seconds_of_training():
    epochs, _, _ = train(XOR, Clock(), every_seconds=30.0)
    assert epochs == [3, 6, 9]  # not the last epoch: the job ends there
    assert train(XOR, Clock(), every_seconds=None)[0] == []  # checkpoint_seconds 0: only checkpoint_every


def test_time_and_epoch_checkpoints_combine_and_the_budget_still_applies():
    spec = {**XOR, "training": {**XOR["training"], "checkpoint_every": 4}}
    assert train(spec, Clock(), every_seconds=30.0)[0] == [3, 4, 7, 8]  # 7: 30 s after the epoch-4 checkpoint
    assert train(spec, Clock(), every_seconds=30.0, budget=lambda: False)[0] == []  # over budget: skipped
    last = {**XOR, "training": {**XOR["training"], "checkpoint_every": 5}}
    assert train(last, Clock(), every_seconds=30.0, budget=lambda: False)[0] == [10]  # the last epoch's is written


def test_a_run_resumed_from_a_time_checkpoint_ends_as_if_never_stopped():
    _, states, whole = train(XOR, Clock(), every_seconds=30.0)
    clock = Clock()
    _, _, resumed = train(XOR, clock, every_seconds=30.0, resume=states[6])
    assert clock.now == 40.0  # only epochs 7-10 were trained again
    assert [row["epoch"] for row in resumed.history] == list(range(1, 11))  # the checkpoint carries epochs 1-6
    np.testing.assert_allclose([r["loss"] for r in resumed.history], [r["loss"] for r in whole.history], rtol=1e-12)
    assert resumed.metrics["loss"] == pytest.approx(whole.metrics["loss"], rel=1e-12)


def test_the_setting_defaults_to_30_seconds_and_reaches_the_worker_callbacks(tmp_path):
    from trainyard.worker.runner import JobReporter

    settings = load_settings({"TRAINYARD_HOME": str(tmp_path)})
    assert settings.checkpoint_seconds == 30.0
    reporter = JobReporter(settings=settings, factory=None, job_id="j", attempt=1, on_hard_timeout=None)
    assert reporter.callbacks(None).every_seconds == 30.0
    off = load_settings({"TRAINYARD_HOME": str(tmp_path), "TRAINYARD_CHECKPOINT_SECONDS": "0"})
    assert JobReporter(settings=off, factory=None, job_id="j", attempt=1,
                       on_hard_timeout=None).callbacks(None).every_seconds is None
    with pytest.raises(SettingsError, match="TRAINYARD_CHECKPOINT_SECONDS"):
        load_settings({"TRAINYARD_HOME": str(tmp_path), "TRAINYARD_CHECKPOINT_SECONDS": "-1"})


def test_up_says_on_shutdown_what_happens_to_running_jobs(migrated_settings, session_factory, user_id):
    from trainyard.api.embedded import running_jobs_note

    assert running_jobs_note(migrated_settings) == ""
    with session_scope(session_factory) as s:
        job, _ = create_job(session=s, owner=user_id, spec=parse_spec({**XOR, "backend": "sklearn"}))
        job_id = job.id
    with session_scope(session_factory) as s:
        claim_job(session=s, job_id=job_id, worker="w1", lease_seconds=30.0)
    note = running_jobs_note(migrated_settings)
    assert note.startswith(f"trainyard up: 1 running job stops with the worker: {job_id} (0/10 epochs). It stays "
                           "`running` until the next `trainyard up` (or `make run`), whose reconciler requeues it")
    assert "resumes from the last checkpoint, made at most every 30 s of training" in note
    assert note.endswith("A scikit-learn job cannot checkpoint: it starts again from epoch 0.")
