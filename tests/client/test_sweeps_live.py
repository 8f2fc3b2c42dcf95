"""The sweep calls of the client library and the sweep commands of the CLI, against the live service (the compose
stack: API, two workers, the reconciler with its sweep controller, on PostgreSQL + Redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainyard.client import NotFound, ValidationFailed

from tests.support import ROOT
from tests.support.fakeserver import last_json

XOR = json.loads((ROOT / "examples" / "xor_relu.json").read_text())
DIGITS_SWEEP = json.loads((ROOT / "examples" / "digits_sweep.json").read_text())
ACTIVATIONS, RATES = ["relu", "tanh"], [0.01, 0.1]


def grid(name: str, epochs: int = 30, **changes) -> dict:
    """A 2 x 2 grid over XOR's hidden activation and learning rate (4 short trials, 2 at once)."""
    base = {**XOR, "name": name, "training": {**XOR["training"], "epochs": epochs, "batch_size": 4}}
    return {"name": name, "base": base,
            "space": {"model.layers[0].activation": {"choice": ACTIVATIONS},
                      "training.optimizer.learning_rate": {"choice": RATES}},
            "objective": {"metric": "loss", "direction": "minimize"}, "sampler": {"name": "grid", "seed": 0},
            "trials": 4, "parallel": 2, "pruner": {"name": "none"}, **changes}


@pytest.fixture
def cli(compose_stack, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")},
           "TRAINYARD_URL": compose_stack.url, "TRAINYARD_TOKEN": compose_stack.token}
    script = str(Path(sys.executable).with_name("trainyard"))

    def run(*argv: str, timeout: float = 240) -> tuple[int, str, str]:
        result = subprocess.run([script, *argv], env=env, capture_output=True, text=True, timeout=timeout,
                                cwd=tmp_path)
        return result.returncode, result.stdout, result.stderr

    return run


def test_client_sweep_lifecycle_and_reuse_of_its_trials(live):
    sweep = live.create_sweep(grid("live-grid"))
    assert sweep.status in ("queued", "running") and sweep.trials == 4 and sweep.parallel == 2
    seen = []
    final = live.wait_sweep(sweep.id, timeout=180, poll_interval=0.2,
                            on_update=lambda s, trials: seen.append((s.status, len(trials))))
    assert final.status == "succeeded" and final.counts["succeeded"] == 4 and seen[-1] == ("succeeded", 4)
    trials = live.sweep_trials(sweep.id)
    assert [t["trial"] for t in trials] == [0, 1, 2, 3]
    points = {(t["params"]["model.layers[0].activation"], t["params"]["training.optimizer.learning_rate"])
              for t in trials}
    assert points == {(a, r) for a in ACTIVATIONS for r in RATES}  # every grid point once
    by_value = live.sweep_trials(sweep.id, sort="objective", page_size=1)  # one per page: follows the cursors
    assert [t["value"] for t in by_value] == sorted(t["value"] for t in trials)
    assert final.best["value"] == by_value[0]["value"] and final.best["job_id"] == by_value[0]["job_id"]
    job = live.get(final.best["job_id"])  # a trial is an ordinary job
    assert job.succeeded and job.metrics["loss"] == final.best["value"]
    assert sweep.id in [s.id for s in live.list_sweeps(status="succeeded")]

    # The same sweep again: every trial is identical work, answered from the first sweep's jobs.
    again = live.wait_sweep(live.create_sweep(grid("live-grid")).id, timeout=120, poll_interval=0.2)
    reused = [live.get(t["job_id"]) for t in live.sweep_trials(again.id)]
    assert {j.get("reused_from") for j in reused} == {t["job_id"] for t in trials}
    assert again.best["value"] == final.best["value"]

    live.delete_sweep(sweep.id)
    with pytest.raises(NotFound):
        live.get_sweep(sweep.id)
    with pytest.raises(NotFound):
        live.get(trials[0]["job_id"])
    assert live.get(reused[0].id).succeeded  # the copies outlive the jobs they copied


def test_client_cancels_a_sweep_and_refuses_a_bad_one_by_field(live):
    sweep = live.create_sweep(grid("live-cancel", epochs=1_000_000))
    cancelled = live.cancel_sweep(sweep.id)
    final = live.wait_sweep(sweep.id, timeout=60, poll_interval=0.2)
    assert cancelled.get("cancel_requested") and final.status == "cancelled"
    assert all(t["state"] == "cancelled" for t in live.sweep_trials(sweep.id))
    bad = grid("bad", space={"model.layers[9].units": {"int": [8, 4]}})
    with pytest.raises(ValidationFailed) as info:
        live.create_sweep(bad)
    assert any(e["loc"].startswith('space["model.layers[9].units"]') for e in info.value.errors)


def test_cli_sweep_commands(cli, tmp_path):
    (tmp_path / "grid.json").write_text(json.dumps(grid("cli-grid", epochs=20)))
    code, out, err = cli("sweep", "grid.json", "--wait", "--interval", "0.2")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["TRIAL", "STATE", "activation", "learning_rate"]
    assert sum(" succeeded " in line for line in lines) == 4 and sum(" * " in f"{line} " for line in lines) >= 1
    assert lines[-1].startswith("best loss ") and "activation=" in lines[-1]
    assert "started sweep" in err and "trial 0 succeeded" in err  # the live view, one line per change on a pipe
    sweep_id = err.split("started sweep ")[1].split()[0]
    code, out, _ = cli("sweeps", "list", "--json")
    assert code == 0 and sweep_id in [s["id"] for s in last_json(out)["items"]]
    code, out, _ = cli("sweeps", "show", sweep_id, "--sort", "objective", "--json")
    shown = last_json(out)
    assert shown["status"] == "succeeded" and len(shown["trial_list"]) == 4
    assert shown["trial_list"][0]["job_id"] == shown["best"]["job_id"]
    code, out, _ = cli("sweeps", "show", sweep_id)
    assert code == 0 and "objective" in out and "BEST SO FAR" in out
    code, out, err = cli("sweeps", "cancel", sweep_id)
    assert code == 1 and "409" in err  # it already ended
    code, out, _ = cli("sweeps", "delete", sweep_id)
    assert code == 0 and out.strip() == f"deleted sweep {sweep_id} and its trials"
    code, _, err = cli("sweeps", "show", sweep_id)
    assert code == 1 and "404" in err
    (tmp_path / "bad.json").write_text(json.dumps(grid("cli-bad", trials=0)))
    code, out, err = cli("sweep", "bad.json", "--json")
    assert code == 1 and "trials" in [e["loc"] for e in last_json(out)["error"]["errors"]]


def test_the_digits_example_is_a_valid_sweep(live):
    """examples/digits_sweep.json as the README runs it (here cut to 2 short trials)."""
    request = {**DIGITS_SWEEP, "trials": 2, "base": {**DIGITS_SWEEP["base"], "training": {
        **DIGITS_SWEEP["base"]["training"], "epochs": 3}}}
    final = live.wait_sweep(live.create_sweep(request).id, timeout=120, poll_interval=0.2)
    assert final.status == "succeeded" and 0 < final.best["value"] <= 1
    assert set(final.best["params"]) == set(DIGITS_SWEEP["space"])
