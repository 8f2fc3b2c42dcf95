"""Sweeps with real processes on SQLite + file broker and PostgreSQL + Redis: workers train the trials, the
reconciler runs the controller, the API (in-process, on the same database and broker) creates and cancels.

Grid covers every point once; random and TPE parameters come back from the seed; queued + running trials never
exceed `parallel`; the median pruner stops a clearly worse trial; cancel stops every trial; SIGKILLed controllers
and a SIGKILLed worker leave exactly `trials` trials, each number once, none lost.
"""

from __future__ import annotations

import copy
import itertools
import os
import signal
import time

import pytest
from sqlalchemy import select

from trainyard.core.sweeps.search import judged_after, next_params
from trainyard.store.db import session_scope
from trainyard.store.migrate import upgrade
from trainyard.store.models import Job
from trainyard.store.settings import Settings
from trainyard.store.workers import list_live_workers

from tests.support.api import Api
from tests.support.processes import start_process, stop_process


pytestmark = pytest.mark.timeout(240)
XOR = {"name": "xor", "dataset": {"builtin": "xor"},
       "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                            {"type": "dense", "units": 1, "activation": "sigmoid"}]},
       "training": {"epochs": 30, "seed": 1, "batch_size": 4, "optimizer": {"name": "adam", "learning_rate": 0.05}}}


def base(epochs: int = 30, **training) -> dict:
    spec = copy.deepcopy(XOR)
    spec["training"].update(epochs=epochs, **training)
    return spec


class Stack:
    """A worker (concurrency 3), the reconciler (with the controller) and an in-process API on one database."""

    def __init__(self, settings: Settings):
        self.settings = settings
        upgrade(settings)
        self.logs = settings.home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, object] = {}
        self.api = Api(settings)
        self.start("worker", "trainyard.worker.main", "--queues", "cpu", "--concurrency", "3")
        self.start("reconciler", "trainyard.worker.reconciler")
        self.wait_worker()

    def start(self, name: str, module: str, *args: str):
        self.procs[name] = start_process(self.settings, ["-m", module, *args], self.logs / f"{name}.log")
        return self.procs[name]

    def wait_worker(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with session_scope(self.api.sessions) as s:
                live = [w for w in list_live_workers(session=s, live_seconds=5) if w.pid == self.procs["worker"].pid]
            if live and "ready." in (self.logs / "worker.log").read_text(errors="replace").split("---")[-1]:
                return
            assert time.monotonic() < deadline, "worker not ready:\n" + self.tail()
            time.sleep(0.1)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(f"{p.name}: {line}" for p in sorted(self.logs.glob("*.log"))
                         for line in p.read_text(errors="replace").splitlines()[-lines:])

    def create(self, doc: dict) -> dict:
        r = self.api.alice.post("/sweeps", json=doc)
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def sweep(self, sweep_id: str) -> dict:
        return self.api.alice.get(f"/sweeps/{sweep_id}").get_json()

    def wait(self, sweep_id: str, until=lambda s: s["status"] in ("succeeded", "failed", "cancelled"),
             timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            body = self.sweep(sweep_id)
            if until(body):
                return body
            assert time.monotonic() < deadline, f"sweep {sweep_id}: {body['status']} {body['counts']}\n" + self.tail()
            time.sleep(0.05)

    def trials(self, sweep_id: str) -> list[dict]:
        r = self.api.alice.get(f"/sweeps/{sweep_id}/trials?limit=500")
        return r.get_json()["items"]

    def jobs(self, sweep_id: str) -> list[Job]:
        with session_scope(self.api.sessions) as s:
            return list(s.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.trial)))

    def stop(self) -> None:
        for proc in self.procs.values():
            stop_process(proc)
        self.api.engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory, fresh_postgres, fast_timings):
    home = tmp_path_factory.mktemp(f"sweeps-{request.param}") / "home"
    timings = {**fast_timings, "sweep_interval_seconds": 0.2}
    if request.param == "sqlite":
        s = Stack(Settings(home=home, **timings))
        try:
            yield s
        finally:
            s.stop()
    else:
        with fresh_postgres(home, **timings) as settings:
            s = Stack(settings)
            try:
                yield s
            finally:
                s.stop()


def most_at_once(jobs: list[Job], start: str) -> int:
    """The most trials alive at once, a trial being alive from its `start` time (created_at or started_at) until it
    finished; checked at every moment a trial became alive."""
    spans = [(getattr(j, start), j.finished_at) for j in jobs if getattr(j, start) is not None]
    return max(sum(1 for a, b in spans if a <= t and (b is None or t < b)) for t, _ in spans)


def test_grid_covers_every_point_exactly_once_and_parallel_is_never_exceeded(stack):
    doc = {"name": "grid", "base": base(30), "sampler": {"name": "grid", "seed": 3}, "parallel": 2,
           "space": {"model.layers[0].units": {"int": [2, 6], "step": 2},
                     "model.layers[0].activation": {"choice": ["relu", "tanh"]}},
           "objective": {"metric": "loss"}}
    body = stack.create(doc)
    assert body["trials"] == 6  # a grid's budget defaults to its size
    done = stack.wait(body["id"])
    assert done["status"] == "succeeded", done
    assert done["counts"] == {"queued": 0, "running": 0, "succeeded": 6, "failed": 0, "cancelled": 0, "pruned": 0}
    trials = stack.trials(body["id"])
    assert [t["trial"] for t in trials] == list(range(6))
    points = [(t["params"]["model.layers[0].units"], t["params"]["model.layers[0].activation"]) for t in trials]
    assert sorted(points) == sorted(itertools.product([2, 4, 6], ["relu", "tanh"]))
    best = min(trials, key=lambda t: t["value"])
    assert done["best"] == {"trial": best["trial"], "job_id": best["job_id"], "value": best["value"],
                            "params": best["params"]}
    jobs = stack.jobs(body["id"])
    assert most_at_once(jobs, "created_at") <= 2 and most_at_once(jobs, "started_at") <= 2
    for job, t in zip(jobs, trials):
        assert job.spec["model"]["layers"][0]["units"] == t["params"]["model.layers[0].units"]


@pytest.mark.parametrize("sampler, parallel", [({"name": "random", "seed": 11}, 3),
                                               ({"name": "tpe", "seed": 11, "startup_trials": 2}, 1)])
def test_parameters_come_back_from_the_seed(stack, sampler, parallel):
    doc = {"base": base(20), "sampler": sampler, "trials": 4, "parallel": parallel,
           "space": {"training.optimizer.learning_rate": {"float": [0.001, 0.1], "log": True},
                     "model.layers[0].units": {"int": [2, 8]}},
           "objective": {"metric": "loss"}}
    runs = []
    for _ in range(2):
        body = stack.create(copy.deepcopy(doc))
        assert stack.wait(body["id"])["status"] == "succeeded"
        runs.append([t["params"] for t in stack.trials(body["id"])])
        jobs = stack.jobs(body["id"])
        assert most_at_once(jobs, "created_at") <= parallel
    assert runs[0] == runs[1] and len({str(p) for p in runs[0]}) == 4
    if sampler["name"] == "random":  # a random trial's parameters depend on the seed and its number only
        request = stack.api.alice.get(f"/sweeps/{body['id']}").get_json()
        assert runs[0] == [next_params({**request, "base": doc["base"]}, [], n) for n in range(4)]


def median_sweep_with_a_hopeless_last_trial() -> dict:
    space = {"training.optimizer.learning_rate": {"choice": [0.05, 0.04, 1e-7]}}
    # a grid seed whose last trial is the one that cannot learn (the order is the seed's shuffle of the grid)
    seed = next(s for s in range(100) if next_params({"space": space, "sampler": {"name": "grid", "seed": s},
                                                      "objective": {"direction": "minimize"}}, [], 2)
                == {"training.optimizer.learning_rate": 1e-7})
    return {"base": base(2500), "sampler": {"name": "grid", "seed": seed}, "parallel": 1, "space": space,
            "objective": {"metric": "loss"}, "pruner": {"name": "median", "warmup_epochs": 20, "startup_trials": 2}}


def assert_the_last_trial_was_pruned(stack, sweep_id: str) -> None:
    done = stack.wait(sweep_id)
    assert done["status"] == "succeeded" and done["counts"]["pruned"] == 1 and done["counts"]["succeeded"] == 2, done
    bad = stack.trials(sweep_id)[2]
    assert bad["state"] == "pruned" and bad["epoch"] < 2500
    job = stack.api.alice.get(f"/jobs/{bad['job_id']}").get_json()
    assert job["status"] == "cancelled" and job["error"]["code"] == "pruned" and job["error"]["epoch"] >= 20


def test_the_median_pruner_stops_a_clearly_worse_trial(stack):
    assert_the_last_trial_was_pruned(stack, stack.create(median_sweep_with_a_hopeless_last_trial())["id"])


def test_a_trial_is_judged_as_it_reports_without_the_controllers_pass(stack):
    """With no controller running, the worker's own reports prune the trial (and its ends start the next ones)."""
    stop_process(stack.procs["reconciler"])
    try:
        assert_the_last_trial_was_pruned(stack, stack.create(median_sweep_with_a_hopeless_last_trial())["id"])
    finally:
        stack.start("reconciler", "trainyard.worker.reconciler")


@pytest.mark.parametrize("pruner, condemned", [
    ({"name": "median", "warmup_epochs": 20, "startup_trials": 2}, 20),
    ({"name": "successive_halving", "min_epochs": 40, "reduction_factor": 3}, 40)])
def test_a_pruned_trial_trains_no_epoch_past_the_one_that_condemned_it(stack, pruner, condemned):
    """The worker asks the pruner at each epoch boundary where its answer can change (the median pruner's first after
    its warm-up; successive halving's first rung): the hopeless trial is condemned at that very epoch and trains none
    after it, and every pruned trial stopped where it was condemned, at an epoch where its pruner judges."""
    done = stack.wait(stack.create({**median_sweep_with_a_hopeless_last_trial(), "pruner": pruner})["id"])
    assert done["status"] == "succeeded" and done["counts"]["succeeded"] >= 1, done
    trials = stack.trials(done["id"])
    bad = trials[2]
    assert bad["state"] == "pruned" and bad["error"]["code"] == "pruned"
    assert (bad["error"]["epoch"], bad["epoch"]) == (condemned, condemned)
    for t in trials:
        if t["state"] == "pruned":
            assert t["epoch"] == t["error"]["epoch"] and judged_after(done["pruner"], t["epoch"]), t


def test_cancel_stops_every_trial(stack):
    doc = {"base": base(1_000_000), "sampler": {"name": "random", "seed": 1}, "trials": 5, "parallel": 2,
           "space": {"training.optimizer.learning_rate": {"float": [0.001, 0.1]}}, "objective": {"metric": "loss"}}
    body = stack.create(doc)
    stack.wait(body["id"], until=lambda s: s["counts"]["running"] == 2)
    r = stack.api.alice.post(f"/sweeps/{body['id']}/cancel")
    assert r.status_code == 202
    done = stack.wait(body["id"], timeout=30)
    assert done["status"] == "cancelled" and done["created"] == 2
    assert done["counts"] == {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 2, "pruned": 0}
    assert all(j.status == "cancelled" and j.error["code"] == "cancelled" and j.epoch < 1_000_000
               for j in stack.jobs(body["id"]))


def test_killed_controllers_and_worker_leave_exactly_the_budget(stack):
    doc = {"base": base(1500, checkpoint_every=100), "sampler": {"name": "random", "seed": 2}, "trials": 6,
           "parallel": 2, "space": {"training.optimizer.learning_rate": {"float": [0.01, 0.1]}},
           "objective": {"metric": "loss"}}
    body = stack.create(doc)
    stack.wait(body["id"], until=lambda s: s["counts"]["running"] >= 1)
    os.killpg(stack.procs["reconciler"].pid, signal.SIGKILL)  # the controller dies mid-sweep
    stack.procs["reconciler"].wait()
    for n in (1, 2):  # two controllers at once, racing each other and the worker's own steps
        stack.start(f"controller-{n}", "trainyard.worker.controller")
    stack.wait(body["id"], until=lambda s: s["counts"]["succeeded"] >= 2 and s["counts"]["running"] >= 1)
    os.killpg(stack.procs["worker"].pid, signal.SIGKILL)  # the worker dies mid-trial
    stack.procs["worker"].wait()
    stack.start("worker", "trainyard.worker.main", "--queues", "cpu", "--concurrency", "3")
    stack.start("reconciler", "trainyard.worker.reconciler")  # requeues the lost trial once its lease expires
    stack.wait_worker()
    done = stack.wait(body["id"], timeout=150)
    assert done["status"] == "succeeded" and done["created"] == 6, done
    jobs = stack.jobs(body["id"])
    assert [j.trial for j in jobs] == list(range(6))
    assert all(j.status == "succeeded" and j.epoch == 1500 for j in jobs), [(j.trial, j.status, j.error) for j in jobs]
    assert any(j.attempts == 2 for j in jobs)  # the trial the killed worker ran resumed on another attempt
    assert most_at_once(jobs, "created_at") <= 2
