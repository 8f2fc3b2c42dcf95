"""Optuna does the sampling and the pruning; this module rebuilds its study from a sweep's rows for each decision.

trainyard's database is the source of truth, so nothing here keeps state between calls: every decision builds an
in-memory study (`optuna.storages.InMemoryStorage`, never Optuna's RDB storage) from the trials as the rows
describe them — finished ones with their objective value, pruned ones with the epochs they reported, queued and
running ones as RUNNING — and asks Optuna.

- Parameters: trial `n` is asked of a sampler seeded `seed + n` — TPE's study holds trials 0..n-1 as the rows
  say, a random sampler's none (it looks at no history): so a random sweep's parameters depend only on its seed,
  and a TPE sweep's also on the results it had when it asked — or, for a grid, of `GridSampler(seed=seed)` in a
  study of n placeholder trials: it gives trial `n` the n-th point of its seeded shuffle of the grid, so every
  point exactly once, in an order fixed by the seed.
- Pruning: the trial under review is RUNNING with the epochs it reported (`intermediate_values`); the pruner's
  `prune` answers. Successive halving and Hyperband keep each trial's value at each rung it reached as a system
  attribute (`completed_rung_<r>`): those of the other trials are rebuilt from their history (the value at the
  rung's epoch), so the trial is compared with every trial that reached that rung so far; the trial under review
  has the rungs before its last epoch marked passed (it would not be running otherwise), so that, as in a live
  study, a rung is judged once, at its own epoch, never between rungs. The median pruner is given only the
  finished trials' values at the trial's last epoch (all it reads). `judged_after(pruner, epoch)` says after which
  epochs the answer can change (the median pruner's from its warm-up on; the rung epochs): a trial's worker asks
  there, at the epoch boundary, so that a pruned trial trains no epoch past the one that condemned it.

Choices are given to Optuna as their JSON text (a choice may be any JSON value; Optuna's categoricals hold only
primitives) and turned back on the way out.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

from trainyard.core.sweeps.request import Dimension

log = logging.getLogger(__name__)


@dataclass
class TrialRow:
    """One trial as the database says: its state (queued, running, succeeded, failed, cancelled, pruned)."""

    number: int
    state: str
    params: dict | None = None
    value: float | None = None  # the objective of a succeeded trial (None: not reported or not finite)
    intermediate: dict[int, float] = field(default_factory=dict)  # epoch → the objective metric that epoch
    sweep_pruned_epoch: int | None = None


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def dimensions(request: dict) -> list[Dimension]:
    """The space of a stored request, in path order."""
    out = []
    for path, spec in sorted(request["space"].items()):
        if "choice" in spec:
            out.append(Dimension(path, "choice", choices=tuple(spec["choice"])))
        else:
            kind = "float" if "float" in spec else "int"
            low, high = spec[kind]
            out.append(Dimension(path, kind, low, high, spec.get("log", False), spec.get("step")))
    return out


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _distribution(optuna, dim: Dimension, grid: bool):
    d = optuna.distributions
    if grid or dim.kind == "choice":
        values = dim.grid_values() if grid else list(dim.choices)
        return d.CategoricalDistribution([_text(v) for v in values])
    if dim.kind == "float":
        return d.FloatDistribution(dim.low, dim.high, log=dim.log, step=dim.step)
    return d.IntDistribution(int(dim.low), int(dim.high), log=dim.log, step=int(dim.step or 1))


def _to_optuna(dim: Dimension, grid: bool, value: Any) -> Any:
    return _text(value) if grid or dim.kind == "choice" else value


def _from_optuna(dim: Dimension, grid: bool, value: Any) -> Any:
    return json.loads(value) if grid or dim.kind == "choice" else value


def _sampler(optuna, request: dict, dims: list[Dimension], number: int):
    s = request["sampler"]
    if s["name"] == "grid":
        return optuna.samplers.GridSampler({d.path: [_text(v) for v in d.grid_values()] for d in dims}, seed=s["seed"])
    if s["name"] == "random":
        return optuna.samplers.RandomSampler(seed=s["seed"] + number)
    return optuna.samplers.TPESampler(seed=s["seed"] + number, n_startup_trials=s.get("startup_trials", 10))


def _pruner(optuna, request: dict):
    p, epochs = request["pruner"], request["base"]["training"]["epochs"]
    if p["name"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p["startup_trials"], n_warmup_steps=p["warmup_epochs"])
    if p["name"] == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=p["min_epochs"], reduction_factor=p["reduction_factor"],
            min_early_stopping_rate=p["min_early_stopping_rate"], bootstrap_count=p["bootstrap_count"])
    if p["name"] == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=p["min_epochs"], max_resource=p["max_epochs"] or epochs,
                                              reduction_factor=p["reduction_factor"])
    return optuna.pruners.NopPruner()


def _from_warmup(pruner: dict, epoch: int) -> bool:
    return epoch >= pruner["warmup_epochs"]


def _at_a_rung(pruner: dict, epoch: int) -> bool:
    rung = pruner["min_epochs"] * pruner["reduction_factor"] ** pruner.get("min_early_stopping_rate", 0)
    while rung < epoch:
        rung *= pruner["reduction_factor"]
    return rung == epoch


# After which epochs each pruner's answer about a trial can change. The median pruner compares every step past its
# warm-up with the finished trials' median; successive halving judges a trial only when its last step reaches its
# next rung, `min_epochs * reduction_factor ** (min_early_stopping_rate + k)`; Hyperband at any of its brackets'
# rungs, `min_epochs * reduction_factor ** k`.
JUDGED_AFTER = {"median": _from_warmup, "successive_halving": _at_a_rung, "hyperband": _at_a_rung}
EVERY_EPOCH = frozenset({"median"})  # pruners whose answer can change after any epoch past their warm-up


def judged_after(pruner: dict, epoch: int) -> bool:
    """Whether the pruner's answer about a trial can change once it reported `epoch` (1-based); never for `none`."""
    judged = JUDGED_AFTER.get(pruner["name"])
    return judged is not None and judged(pruner, epoch)


def _frozen(optuna, row: TrialRow, dims: list[Dimension], grid: bool, system_attrs: dict | None = None):
    """The row as a trial Optuna can be given (`study.add_trial`)."""
    State = optuna.trial.TrialState
    known = {d.path: d for d in dims}
    params = {p: _to_optuna(known[p], grid, v) for p, v in (row.params or {}).items() if p in known}
    distributions = {p: _distribution(optuna, known[p], grid) for p in params}
    intermediate = dict(row.intermediate)
    value = None
    if row.state == "succeeded" and row.value is not None:
        state, value = State.COMPLETE, row.value
    elif row.state == "pruned":
        state = State.PRUNED
        until = row.sweep_pruned_epoch
        intermediate = {e: v for e, v in intermediate.items() if until is None or e <= until}
        value = intermediate[max(intermediate)] if intermediate else None
    elif row.state in ("queued", "running"):
        state = State.RUNNING
    else:  # failed, cancelled, or succeeded without a finite objective
        state = State.FAIL
    frozen = optuna.trial.create_trial(state=state, value=value, params=params, distributions=distributions,
                                       intermediate_values=intermediate, system_attrs=system_attrs or {})
    frozen.number = row.number  # what the study will number it (Hyperband's bracket depends on it)
    return frozen


def _study(optuna, request: dict, sampler=None, pruner=None, name: str = "sweep"):
    direction = request["objective"]["direction"]
    return optuna.create_study(storage=optuna.storages.InMemoryStorage(), sampler=sampler, pruner=pruner,
                               direction=direction, study_name=name)


def _placeholder(number: int) -> TrialRow:
    return TrialRow(number, "failed")  # a trial whose job was deleted: it counts, and says nothing


def _numbered(rows: list[TrialRow], upto: int) -> list[TrialRow]:
    """Rows 0..upto-1 in order, a placeholder for each number no row has."""
    by_number = {r.number: r for r in rows}
    return [by_number.get(n) or _placeholder(n) for n in range(upto)]


def next_params(request: dict, rows: list[TrialRow], number: int) -> dict:
    """The parameters of trial `number` ({path: value}), given the sweep's other trials."""
    optuna = _optuna()
    dims, grid = dimensions(request), request["sampler"]["name"] == "grid"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = _sampler(optuna, request, dims, number)
        study = _study(optuna, request, sampler=sampler)
        if request["sampler"]["name"] == "grid":
            # GridSampler gives trial n (n < the grid's size) the n-th point of its seeded shuffle, whatever the
            # other trials hold: n placeholders number the asked trial n without rebuilding every trial.
            study.add_trials([optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL)] * number)
        elif request["sampler"]["name"] == "tpe":  # TPE learns from the trials; a random sampler looks at none
            for row in _numbered(rows, number):
                study.add_trial(_frozen(optuna, row, dims, grid))
        trial = study.ask()
        for d in dims:
            dist = _distribution(optuna, d, grid)
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                trial.suggest_categorical(d.path, list(dist.choices))
            elif isinstance(dist, optuna.distributions.FloatDistribution):
                trial.suggest_float(d.path, dist.low, dist.high, log=dist.log, step=dist.step)
            else:
                trial.suggest_int(d.path, dist.low, dist.high, log=dist.log, step=dist.step)
        return {d.path: _from_optuna(d, grid, trial.params[d.path]) for d in dims}


def _rung_attrs(pruner, study, frozen, row: TrialRow) -> dict:
    """The `completed_rung_<r>` attributes a trial would have had: its value at each rung epoch it reached."""
    optuna = _optuna()
    if isinstance(pruner, optuna.pruners.HyperbandPruner):
        if not pruner._pruners:
            pruner._try_initialization(study)
        inner = pruner._pruners[pruner._get_bracket_id(study, frozen)]
    elif isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner):
        inner = pruner
    else:
        return {}
    attrs, rung = {}, 0
    last = row.sweep_pruned_epoch if row.sweep_pruned_epoch is not None else max(row.intermediate, default=0)
    while True:
        step = inner._min_resource * inner._reduction_factor ** (inner._min_early_stopping_rate + rung)
        if step > last or step not in row.intermediate:
            return attrs
        attrs[f"completed_rung_{rung}"] = row.intermediate[step]
        rung += 1


def _at_step(rows: list[TrialRow], step: int) -> list[TrialRow]:
    """The rows as the median pruner reads them at `step`: a finished trial's value there and nothing else, not even
    parameters (it compares the trial's best so far with the median of the finished trials' values at its last
    step), so that a study rebuilt at each epoch of a long trial holds one value per trial, not whole histories."""
    return [TrialRow(r.number, r.state, None, r.value,
                     {step: r.intermediate[step]} if r.state == "succeeded" and step in r.intermediate else {})
            for r in rows]


def should_prune(request: dict, rows: list[TrialRow], target: TrialRow, sweep_id: str = "sweep") -> bool:
    """Whether the sweep's pruner stops `target` (a running trial) after the last epoch it reported."""
    if request["pruner"]["name"] == "none" or not target.intermediate:
        return False
    optuna = _optuna()
    dims, grid = dimensions(request), request["sampler"]["name"] == "grid"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        pruner = _pruner(optuna, request)
        study = _study(optuna, request, pruner=pruner, name=sweep_id)
        if request["pruner"]["name"] == "median":
            rows = _at_step(rows, max(target.intermediate))
        upto = max([r.number for r in rows] + [target.number]) + 1
        for row in _numbered([r for r in rows if r.number != target.number] + [target], upto):
            frozen = _frozen(optuna, row, dims, grid)
            if row.intermediate and request["pruner"]["name"] in ("successive_halving", "hyperband"):
                passed = row
                if row is target:  # still running: it passed the rungs before its last epoch (a rung there is judged)
                    last = max(row.intermediate)
                    passed = replace(row, intermediate={e: v for e, v in row.intermediate.items() if e < last})
                frozen = _frozen(optuna, row, dims, grid, _rung_attrs(pruner, study, frozen, passed))
            study.add_trial(frozen)
        trial = study.get_trials(deepcopy=False)[target.number]
        return bool(pruner.prune(study, trial))
