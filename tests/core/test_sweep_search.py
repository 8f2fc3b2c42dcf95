"""trainyard.core.sweeps: paths into a spec, the request's checks, and Optuna's decisions rebuilt from rows (no database)."""

from __future__ import annotations

import itertools

import pytest

from trainyard.core.sweeps.paths import PathError, apply, parse_path, resolve
from trainyard.core.sweeps.request import SweepError, parse_request
from trainyard.core.sweeps.search import TrialRow, judged_after, next_params, should_prune

SPACE = {"training.optimizer.learning_rate": {"float": [1e-4, 1e-1], "log": True},
         "model.layers[0].units": {"int": [2, 64], "log": True},
         "model.layers[0].activation": {"choice": ["relu", "tanh", {"name": "leaky_relu", "alpha": 0.1}]}}


def request(sampler: dict, space: dict = SPACE, pruner: dict | None = None, epochs: int = 20) -> dict:
    return {"space": space, "objective": {"metric": "loss", "direction": "minimize"}, "sampler": sampler,
            "pruner": pruner or {"name": "none"}, "base": {"training": {"epochs": epochs}}}


def test_paths_parse_resolve_and_apply_without_touching_the_original():
    doc = {"model": {"layers": [{"units": 4}, {"units": 1}]}, "training": {"optimizer": {"learning_rate": 0.1}}}
    assert parse_path("model.layers[0].units") == ["model", "layers", 0, "units"]
    assert resolve(doc, "model.layers[1].units") == 1
    out = apply(doc, {"model.layers[0].units": 8, "training.optimizer": {"name": "sgd"}})
    assert out["model"]["layers"][0]["units"] == 8 and out["training"]["optimizer"] == {"name": "sgd"}
    assert doc["model"]["layers"][0]["units"] == 4
    with pytest.raises(PathError, match=r"the spec has no model.layers\[9\]: model.layers has 2 items"):
        resolve(doc, "model.layers[9].units")
    with pytest.raises(PathError, match="unknown field 'foo' in training"):
        resolve(doc, "training.foo")
    for bad in ("", "a..b", "a[x]", "1a", "a.[0]"):
        with pytest.raises(PathError):
            parse_path(bad)


def test_grid_gives_every_point_exactly_once_in_an_order_fixed_by_the_seed():
    space = {"model.layers[0].units": {"int": [2, 6], "step": 2}, "training.batch_size": {"choice": [1, 4]},
             "training.optimizer.learning_rate": {"float": [0.1, 0.3], "step": 0.1}}
    points = {tuple(sorted(p.items())) for p in (dict(zip(["model.layers[0].units", "training.batch_size",
                                                           "training.optimizer.learning_rate"], v))
                                                  for v in itertools.product([2, 4, 6], [1, 4], [0.1, 0.2, 0.3]))}
    req = request({"name": "grid", "seed": 7}, space)
    rows, seen = [], []
    for n in range(18):
        params = next_params(req, rows, n)
        rows.append(TrialRow(n, "running", params))
        seen.append(tuple(sorted(params.items())))
    assert len(seen) == 18 and set(seen) == points
    assert [next_params(req, [], n) for n in range(18)] == [dict(p) for p in seen]  # trial n's point: seed and n
    other = [tuple(sorted(next_params(request({"name": "grid", "seed": 8}, space), [], n).items())) for n in range(18)]
    assert other != seen and set(other) == points


@pytest.mark.parametrize("sampler", [{"name": "random", "seed": 3}, {"name": "tpe", "seed": 3, "startup_trials": 2}])
def test_random_and_tpe_parameters_are_reproducible_from_the_seed(sampler):
    def run(seed_sampler):
        rows, out = [], []
        for n in range(6):
            params = next_params(request(seed_sampler), rows, n)
            out.append(params)
            rows.append(TrialRow(n, "succeeded", params, value=params["training.optimizer.learning_rate"]))
        return out

    first, again = run(sampler), run(dict(sampler))
    assert first == again
    assert run({**sampler, "seed": 4}) != first
    for params in first:
        assert 1e-4 <= params["training.optimizer.learning_rate"] <= 1e-1
        assert 2 <= params["model.layers[0].units"] <= 64 and isinstance(params["model.layers[0].units"], int)
        assert params["model.layers[0].activation"] in SPACE["model.layers[0].activation"]["choice"]


def test_tpe_after_its_startup_trials_samples_near_the_best():
    req = request({"name": "tpe", "seed": 0, "startup_trials": 5},
                  {"training.optimizer.learning_rate": {"float": [0.0, 1.0]}})
    rows = [TrialRow(n, "succeeded", {"training.optimizer.learning_rate": n / 30}, value=abs(n / 30 - 0.2))
            for n in range(31)]
    picks = [next_params(req, rows, 31 + k)["training.optimizer.learning_rate"] for k in range(10)]
    assert sum(abs(p - 0.2) for p in picks) / 10 < 0.1  # uniform sampling would average about 0.34


def _history(final: float, epochs: int) -> dict[int, float]:
    return {e: 1.0 - (1.0 - final) * e / epochs for e in range(1, epochs + 1)}


@pytest.mark.parametrize("pruner", [{"name": "median", "warmup_epochs": 2, "startup_trials": 2},
                                    {"name": "successive_halving", "min_epochs": 1, "reduction_factor": 3,
                                     "min_early_stopping_rate": 0, "bootstrap_count": 0},
                                    {"name": "hyperband", "min_epochs": 1, "max_epochs": 20, "reduction_factor": 3}])
def test_pruners_stop_a_clearly_worse_trial_and_keep_a_better_one(pruner):
    req = request({"name": "random", "seed": 0}, pruner=pruner)
    done = [TrialRow(n, "succeeded", {}, value=v, intermediate=_history(v, 20)) for n, v in enumerate([0.3, 0.2, 0.25])]
    worse = TrialRow(3, "running", {}, intermediate={e: 1.0 for e in range(1, 10)})
    better = TrialRow(3, "running", {}, intermediate=_history(0.1, 20) | {})
    better.intermediate = {e: v for e, v in better.intermediate.items() if e < 10}
    assert should_prune(req, done, worse) is True
    assert should_prune(req, done, better) is False


def test_median_waits_for_its_warmup_and_startup_trials_and_none_never_prunes():
    req = request({"name": "random", "seed": 0}, pruner={"name": "median", "warmup_epochs": 5, "startup_trials": 2})
    done = [TrialRow(0, "succeeded", {}, value=0.1, intermediate=_history(0.1, 20))]
    worse = TrialRow(1, "running", {}, intermediate={e: 1.0 for e in range(1, 9)})
    assert should_prune(req, done, worse) is False  # one finished trial, two needed
    done.append(TrialRow(2, "succeeded", {}, value=0.1, intermediate=_history(0.1, 20)))
    early = TrialRow(1, "running", {}, intermediate={e: 1.0 for e in range(1, 4)})
    assert should_prune(req, done, early) is False  # within its warm-up
    assert should_prune(req, done, worse) is True
    assert should_prune(request({"name": "random", "seed": 0}), done, worse) is False


@pytest.mark.parametrize("pruner, epochs", [
    ({"name": "median", "warmup_epochs": 10, "startup_trials": 5}, list(range(10, 201))),
    ({"name": "successive_halving", "min_epochs": 2, "reduction_factor": 4, "min_early_stopping_rate": 0,
      "bootstrap_count": 0}, [2, 8, 32, 128]),
    ({"name": "successive_halving", "min_epochs": 5, "reduction_factor": 3, "min_early_stopping_rate": 1,
      "bootstrap_count": 0}, [15, 45, 135]),
    ({"name": "hyperband", "min_epochs": 1, "max_epochs": 200, "reduction_factor": 3}, [1, 3, 9, 27, 81]),
    ({"name": "none"}, []),
])
def test_a_trial_is_judged_after_the_epochs_where_its_pruners_answer_can_change(pruner, epochs):
    assert [e for e in range(1, 201) if judged_after(pruner, e)] == epochs


def test_successive_halving_condemns_a_hopeless_trial_at_its_first_rung_and_never_between_rungs():
    """A worker asks only at the rung epochs: the first one already stops a trial worse than every other there."""
    pruner = {"name": "successive_halving", "min_epochs": 4, "reduction_factor": 2, "min_early_stopping_rate": 0,
              "bootstrap_count": 0}
    req = request({"name": "random", "seed": 0}, pruner=pruner, epochs=40)
    done = [TrialRow(n, "succeeded", {}, value=v, intermediate=_history(v, 40)) for n, v in enumerate([0.3, 0.2])]
    hopeless = {e: 1.0 for e in range(1, 41)}
    asked = [e for e in range(1, 41) if judged_after(pruner, e)
             and should_prune(req, done, TrialRow(2, "running", {}, intermediate={k: v for k, v in hopeless.items()
                                                                                 if k <= e}))]
    assert asked[0] == 4 and all(judged_after(pruner, e) for e in asked)


@pytest.mark.parametrize("pruner", [
    {"name": "successive_halving", "min_epochs": 4, "reduction_factor": 2, "min_early_stopping_rate": 0,
     "bootstrap_count": 0},
    {"name": "hyperband", "min_epochs": 4, "max_epochs": 40, "reduction_factor": 2}])
def test_a_rung_is_judged_once_at_its_own_epoch_never_between_rungs(pruner):
    """A running trial passed the rungs before its last epoch (else it would have been stopped there): a trial best
    at the first rung that then gets worse is not stopped before the next rung, where it is judged again."""
    req = request({"name": "random", "seed": 0}, pruner=pruner, epochs=40)
    done = [TrialRow(n, "succeeded", {}, value=0.5, intermediate={e: 0.5 for e in range(1, 41)}) for n in range(4)]
    curve = {e: 0.4 if e <= 4 else 0.9 for e in range(1, 41)}  # the best at epoch 4, the worst from epoch 5 on

    def prunes(last: int) -> bool:
        return should_prune(req, done, TrialRow(4, "running", {}, intermediate={e: v for e, v in curve.items()
                                                                                 if e <= last}))

    stopped = [last for last in range(1, 41) if prunes(last)]
    assert stopped and all(judged_after(pruner, last) for last in stopped) and 4 not in stopped
    if pruner["name"] == "successive_halving":
        assert stopped == [8, 16, 32]  # kept at 4; 5-7 not judged; stopped at the next rung (and those after it)


def test_the_median_pruner_decides_the_same_from_the_values_at_the_trials_last_epoch():
    """should_prune gives the median pruner only the finished trials' values at the judged epoch (it reads no
    other): its answers equal those of a plain Optuna study holding every trial's whole history."""
    import optuna

    pruner = {"name": "median", "warmup_epochs": 3, "startup_trials": 2}
    req = request({"name": "random", "seed": 0}, pruner=pruner)
    finals = [0.3, 0.2, 0.25, 0.5]
    done = [TrialRow(n, "succeeded", {}, value=v, intermediate=_history(v, 20)) for n, v in enumerate(finals)]
    done.append(TrialRow(4, "pruned", {}, intermediate=_history(0.9, 20), sweep_pruned_epoch=6))
    for final in (0.1, 0.22, 0.26, 0.4, 0.6):
        for last in (2, 3, 7, 12, 20):
            target = TrialRow(5, "running", {}, intermediate={e: v for e, v in _history(final, 20).items()
                                                               if e <= last})
            study = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner(2, 3))
            for row in done:
                state = optuna.trial.TrialState.COMPLETE if row.state == "succeeded" else optuna.trial.TrialState.PRUNED
                ivs = row.intermediate if row.state == "succeeded" else {e: v for e, v in row.intermediate.items()
                                                                         if e <= 6}
                study.add_trial(optuna.trial.create_trial(state=state, value=row.value if row.value else ivs[6],
                                                          intermediate_values=ivs))
            live = study.ask()
            for e, v in target.intermediate.items():
                live.report(v, e)
            assert should_prune(req, done, target) is bool(live.should_prune()), (final, last)


LIMITS = dict(max_trials=100, max_parallel=8, max_grid=50)


def base_request(**changes) -> dict:
    return {"base": {}, "space": {"training.epochs": {"int": [1, 5]}}, "objective": {"metric": "loss"},
            "sampler": {"name": "random", "seed": 1}, "trials": 4, **changes}


@pytest.mark.parametrize("changes, loc, msg", [
    ({"space": {"a": {"float": [2, 1]}}}, 'space["a"].float', "low (2) must be less than high (1)"),
    ({"space": {"a": {"float": [0, 1], "log": True}}}, 'space["a"].float', "log-scaled range needs low > 0"),
    ({"space": {"a": {"int": [1.5, 3]}}}, 'space["a"].int', "two integers"),
    ({"space": {"a": {"choice": []}}}, 'space["a"].choice', "non-empty list"),
    ({"space": {"a": {"choice": [1, 1]}}}, 'space["a"].choice', "more than once"),
    ({"space": {"a": {"float": [0, 1], "lg": True}}}, 'space["a"].lg', "unknown field"),
    ({"space": {"a[": {"int": [1, 2]}}}, 'space["a["]', "not a path"),
    ({"space": {"a": {"int": [1, 2]}, "a.b": {"int": [1, 2]}}}, 'space["a.b"]', "lies inside a"),
    ({"space": {}}, "space", "at least one"),
    ({"sampler": {"name": "grid"}, "space": {"a": {"float": [0, 1]}}}, 'space["a"]', "finite set"),
    ({"sampler": {"name": "grid"}, "space": {"a": {"int": [1, 100]}}}, "space", "the limit is 50"),
    ({"sampler": {"name": "grid"}, "space": {"a": {"int": [1, 3]}}, "trials": 4}, "trials", "only 3 points"),
    ({"sampler": {"name": "bayes"}}, "sampler.name", "grid, random, tpe"),
    ({"sampler": {"name": "random", "seed": -1}}, "sampler.seed", "from 0"),
    ({"pruner": {"name": "median", "warmup": 3}}, "pruner.warmup", "unknown setting"),
    ({"pruner": {"name": "median", "warmup_epochs": -1}}, "pruner.warmup_epochs", ">= 0"),
    ({"pruner": {"name": "asha"}}, "pruner.name", "none, median, successive_halving, hyperband"),
    ({"trials": 0}, "trials", "from 1 to 100"),
    ({"trials": 101}, "trials", "max_sweep_trials"),
    ({"parallel": 9}, "parallel", "max_sweep_parallel"),
    ({"objective": {"metric": "loss", "direction": "up"}}, "objective.direction", "maximize or minimize"),
    ({"objective": {}}, "objective.metric", "required"),
    ({"extra": 1}, "extra", "unknown field"),
])
def test_invalid_requests_name_the_field(changes, loc, msg):
    with pytest.raises(SweepError) as caught:
        parse_request(base_request(**changes), **LIMITS)
    assert any(e["loc"] == loc and msg in e["msg"] for e in caught.value.errors), caught.value.errors


def test_defaults_a_grid_budget_and_a_drawn_seed_are_filled_in():
    r = parse_request(base_request(sampler={"name": "grid"}, space={"a": {"int": [1, 3]}, "b": {"choice": [0, 1]}},
                                   trials=None), **LIMITS)
    assert r.trials == 6 and r.parallel == 1 and 0 <= r.sampler["seed"] < 2**31
    assert r.direction == "minimize" and r.pruner == {"name": "none"}
    assert parse_request(base_request(objective={"metric": "val_accuracy"}), **LIMITS).direction == "maximize"
