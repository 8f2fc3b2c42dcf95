"""What the sweep commands print (client.sweep_table): column names, the running best, the live view on a pipe."""

from __future__ import annotations

import io

from trainyard.client.sweep_table import LiveView, best_text, headline, short_names, trial_rows, trials_table
from trainyard.client.sweeps import Sweep

SPACE = {"training.optimizer.learning_rate": {"float": [1e-4, 0.1], "log": True},
         "model.layers[0].units": {"int": [8, 128], "log": True},
         "model.layers[0].activation": {"choice": ["relu", "tanh"]}}


def sweep(direction: str = "maximize", best: dict | None = None, status: str = "running", **counts) -> Sweep:
    return Sweep({"id": "s1", "name": "digits", "status": status, "trials": 4, "parallel": 2, "space": SPACE,
                  "objective": {"metric": "val_accuracy", "direction": direction},
                  "counts": {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0, "pruned": 0,
                             **counts}, "best": best})


def trial(n: int, state: str, value: float | None = None, lr: float = 0.01, units: int = 16) -> dict:
    return {"trial": n, "job_id": f"j{n}", "state": state, "value": value, "epoch": 10 if value else 3,
            "epochs": 10, "params": {"training.optimizer.learning_rate": lr, "model.layers[0].units": units,
                                     "model.layers[0].activation": "relu"}}


def test_space_paths_become_short_unique_column_names():
    assert short_names(list(SPACE)) == {"training.optimizer.learning_rate": "learning_rate",
                                        "model.layers[0].units": "units",
                                        "model.layers[0].activation": "activation"}
    clash = ["model.layers[0].units", "model.layers[2].units", "training.epochs"]
    assert short_names(clash) == {"model.layers[0].units": "[0].units", "model.layers[2].units": "[2].units",
                                  "training.epochs": "epochs"}


def test_best_so_far_follows_the_direction_and_only_succeeded_trials():
    trials = [trial(0, "succeeded", 0.90), trial(1, "succeeded", 0.95), trial(2, "pruned", None),
              trial(3, "succeeded", 0.93)]
    rows, _, headers = trial_rows(sweep(best={"trial": 1}), trials)
    assert [r["best"] for r in rows] == [0.90, 0.95, 0.95, 0.95]
    assert [r["trial"] for r in rows] == ["0", "1 *", "2", "3"]
    assert headers[:5] == ["TRIAL", "STATE", "learning_rate", "units", "activation"] and "val_accuracy" in headers
    rows, _, _ = trial_rows(sweep("minimize"), trials)
    assert [r["best"] for r in rows] == [0.90, 0.90, 0.90, 0.90]
    # Best objective first: the rows keep that order, the running best is still by trial number.
    rows, _, _ = trial_rows(sweep(), [trials[1], trials[3], trials[0]])
    assert [(r["trial"], r["best"]) for r in rows] == [("1", 0.95), ("3", 0.95), ("0", 0.90)]


def test_the_table_can_show_only_the_newest_trials():
    text = trials_table(sweep(), [trial(n, "succeeded", 0.5 + n / 100) for n in range(10)], last=3)
    lines = text.splitlines()
    assert lines[0] == "(7 earlier trials not shown)" and len(lines) == 5
    assert [line.split()[0] for line in lines[2:]] == ["7", "8", "9"]


def test_headline_and_best_name_the_counts_and_the_best_parameters():
    best = {"trial": 1, "job_id": "j1", "value": 0.95,
            "params": {"training.optimizer.learning_rate": 0.01, "model.layers[0].units": 64,
                       "model.layers[0].activation": "tanh"}}
    s = sweep(best=best, running=1, succeeded=2, pruned=1)
    assert headline(s) == ("sweep s1 (digits): running, 4/4 trials: 1 running, 2 succeeded, 1 pruned; "
                           "best val_accuracy 0.9500 (trial 1, job j1): learning_rate=0.0100 units=64 activation=tanh")
    assert best_text(s).startswith("best val_accuracy 0.9500 (trial 1, job j1)")


def test_on_a_pipe_the_live_view_prints_each_trial_change_once():
    out = io.StringIO()
    view = LiveView(out)
    view(sweep(running=2), [trial(0, "running"), trial(1, "queued")])
    view(sweep(running=2), [trial(0, "running"), trial(1, "running")])
    view(sweep(running=1, succeeded=1), [trial(0, "succeeded", 0.9), trial(1, "running")])
    done = sweep(status="succeeded", succeeded=2, best={"trial": 0, "job_id": "j0", "value": 0.9, "params": {}})
    view(done, [trial(0, "succeeded", 0.9), trial(1, "succeeded", 0.8)])
    view(done, [trial(0, "succeeded", 0.9), trial(1, "succeeded", 0.8)])
    lines = out.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines[:4]] == [
        "trial 0 running", "trial 1 running", "trial 0 succeeded", "trial 1 succeeded"]
    assert "val_accuracy 0.9000  best so far 0.9000" in lines[2] and "best so far 0.9000" in lines[3]
    assert lines[4].startswith("sweep s1 (digits): succeeded, 2/4 trials") and len(lines) == 5
