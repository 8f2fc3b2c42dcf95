"""A sweep request: its search space, objective, sampler, budget, parallelism and pruner, checked field by field.

`parse_request` checks everything but the base spec itself (the API validates that as any job spec, then calls
`resolve_space` against its normalised form) and returns a `SweepRequest`, or raises `SweepError` listing
`{"loc", "msg"}` errors that name the field: `space["model.layers[9].units"]`, `objective.metric`, `trials`, …
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from trainyard.core.metrics import minimised
from trainyard.core.sweeps.paths import PathError, overlapping, parse_path, resolve

SAMPLERS = ("grid", "random", "tpe")
# Each pruner's settings and their defaults (None: a default that depends on the base spec).
PRUNERS: dict[str, dict[str, tuple[int, int | None]]] = {  # name → {setting: (minimum, default)}
    "none": {},
    "median": {"warmup_epochs": (0, 0), "startup_trials": (0, 5)},
    "successive_halving": {"min_epochs": (1, 1), "reduction_factor": (2, 3), "min_early_stopping_rate": (0, 0),
                           "bootstrap_count": (0, 0)},
    "hyperband": {"min_epochs": (1, 1), "max_epochs": (1, None), "reduction_factor": (2, 3)},
}
SAMPLER_SETTINGS = {"grid": {}, "random": {}, "tpe": {"startup_trials": (0, 10)}}
KINDS = ("float", "int", "choice")
MAX_DIMENSIONS = 32
MAX_CHOICES = 64
SEED_MAX = 2**31 - 1
FIELDS = ("name", "base", "space", "objective", "sampler", "trials", "parallel", "pruner")


class SweepError(ValueError):
    """An invalid sweep request; `errors` lists `{"loc", "msg"}`."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(f"{e['loc']}: {e['msg']}" for e in errors))


def space_loc(path: str) -> str:
    return f"space[{json.dumps(path)}]"


@dataclass(frozen=True)
class Dimension:
    """One axis of the space: `float` or `int` in [low, high] (optionally log-scaled or stepped), or a `choice`."""

    path: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def grid_values(self) -> list | None:
        """Every value a grid visits, or None when the axis is continuous (a float without a step)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.step is None and self.kind == "float":
            return None
        step = self.step or 1
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        if self.kind == "int":
            return [int(self.low + k * step) for k in range(count)]
        return [round(self.low + k * step, 12) for k in range(count)]

    def grid_size(self) -> int | None:
        if self.kind == "choice":
            return len(self.choices)
        if self.step is None and self.kind == "float":
            return None
        return int(math.floor((self.high - self.low) / (self.step or 1) + 1e-9)) + 1

    def extremes(self) -> list:
        """The values whose specs are checked at submit: both ends of a range, every choice."""
        if self.kind == "choice":
            return list(self.choices)
        grid = self.grid_values() if self.step is not None else None
        return [grid[0], grid[-1]] if grid else [self.low, self.high]

    def as_json(self) -> dict:
        if self.kind == "choice":
            return {"choice": list(self.choices)}
        out: dict[str, Any] = {self.kind: [self.low, self.high], "log": self.log}
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass
class SweepRequest:
    name: str | None
    base: dict  # the raw base document until the API replaces it with the normalised spec
    space: list[Dimension]
    metric: str
    direction: str
    sampler: dict  # {"name", "seed", …settings}
    trials: int
    parallel: int
    pruner: dict  # {"name", …settings}
    errors: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        """What the sweep row stores (and its body shows)."""
        return {"name": self.name, "base": self.base, "space": {d.path: d.as_json() for d in self.space},
                "objective": {"metric": self.metric, "direction": self.direction}, "sampler": self.sampler,
                "trials": self.trials, "parallel": self.parallel, "pruner": self.pruner}

    def grid_size(self) -> int | None:
        if self.sampler["name"] != "grid":
            return None
        return math.prod(d.grid_size() or 0 for d in self.space)


def _number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53)
    return isinstance(value, (int, float)) and math.isfinite(value)


def parse_dimension(path: str, spec: Any, errors: list[dict]) -> Dimension | None:
    """One entry of `space`, or None after adding its errors."""
    loc = space_loc(path)
    try:
        parse_path(path)
    except PathError as exc:
        errors.append({"loc": loc, "msg": f"not a path into the spec: {exc}"})
        return None
    if not isinstance(spec, dict):
        errors.append({"loc": loc, "msg": 'must be an object: {"float": [low, high]}, {"int": [low, high]} or '
                                          '{"choice": [values…]}'})
        return None
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        errors.append({"loc": loc, "msg": f"give exactly one of {', '.join(KINDS)}"})
        return None
    kind = kinds[0]
    allowed = {"choice"} if kind == "choice" else {kind, "log", "step"}
    for key in spec:
        if key not in allowed:
            errors.append({"loc": f"{loc}.{key}", "msg": f"unknown field; a {kind} dimension has "
                                                         f"{', '.join(sorted(allowed))}"})
    if kind == "choice":
        choices = spec["choice"]
        if not isinstance(choices, list) or not choices:
            errors.append({"loc": f"{loc}.choice", "msg": "must be a non-empty list of values"})
            return None
        if len(choices) > MAX_CHOICES:
            errors.append({"loc": f"{loc}.choice", "msg": f"at most {MAX_CHOICES} values"})
            return None
        texts = [json.dumps(c, sort_keys=True) for c in choices]
        if len(set(texts)) != len(texts):
            errors.append({"loc": f"{loc}.choice", "msg": "lists a value more than once"})
            return None
        return Dimension(path, "choice", choices=tuple(choices))
    bounds, integer = spec[kind], kind == "int"
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(_number(b, integer) for b in bounds)):
        what = "integers" if integer else "finite numbers"
        errors.append({"loc": f"{loc}.{kind}", "msg": f"must be [low, high], two {what}"})
        return None
    low, high = (int(b) for b in bounds) if integer else (float(b) for b in bounds)
    log, step = spec.get("log", False), spec.get("step")
    before = len(errors)
    if not isinstance(log, bool):
        errors.append({"loc": f"{loc}.log", "msg": "must be true or false"})
    if low >= high:
        errors.append({"loc": f"{loc}.{kind}", "msg": f"low ({bounds[0]}) must be less than high ({bounds[1]})"})
    elif log is True and low <= 0:
        errors.append({"loc": f"{loc}.{kind}", "msg": f"a log-scaled range needs low > 0, got {bounds[0]}"})
    if step is not None:
        if not _number(step, integer) or step <= 0:
            errors.append({"loc": f"{loc}.step", "msg": f"must be a positive {'integer' if integer else 'number'}"})
        elif log is True:
            errors.append({"loc": f"{loc}.step", "msg": "a log-scaled range takes no step"})
        elif low < high and step > high - low:
            errors.append({"loc": f"{loc}.step", "msg": f"larger than the range {bounds[0]}..{bounds[1]}"})
        else:
            step = int(step) if integer else float(step)
    if len(errors) > before:
        return None
    return Dimension(path, kind, low, high, log, step)


def _settings(loc: str, doc: dict, known: dict[str, tuple[int, int | None]], errors: list[dict]) -> dict:
    out = {}
    for key, value in doc.items():
        if key == "name":
            continue
        if key not in known:
            names = ", ".join(known) or "none"
            errors.append({"loc": f"{loc}.{key}", "msg": f"unknown setting; this one has: {names}"})
            continue
        minimum = known[key][0]
        if not _number(value, True) or value < minimum:
            errors.append({"loc": f"{loc}.{key}", "msg": f"must be an integer >= {minimum}"})
            continue
        out[key] = int(value)
    for key, (_, default) in known.items():
        out.setdefault(key, default)
    return out


def _named(doc: dict, key: str, names: tuple, default: str | None, errors: list[dict]) -> dict | None:
    value = doc.get(key, {"name": default} if default else None)
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or value.get("name") not in names:
        errors.append({"loc": f"{key}.name" if isinstance(value, dict) else key,
                       "msg": f"must be one of {', '.join(names)}"})
        return None
    return value


def parse_request(doc: Any, *, max_trials: int, max_parallel: int, max_grid: int) -> SweepRequest:
    """Check every field but the base spec's own (see the module docstring); SweepError lists what is wrong."""
    if not isinstance(doc, dict):
        raise SweepError([{"loc": "", "msg": "the body must be a JSON object (a sweep)"}])
    errors: list[dict] = [{"loc": key, "msg": f"unknown field; a sweep has {', '.join(FIELDS)}"}
                          for key in doc if key not in FIELDS]
    name = doc.get("name")
    if name is not None and not (isinstance(name, str) and 0 < len(name) <= 200):
        errors.append({"loc": "name", "msg": "must be a string of 1 to 200 characters"})
    if not isinstance(doc.get("base"), dict):
        errors.append({"loc": "base", "msg": "required: the job spec every trial starts from"})
    space = doc.get("space")
    dims: list[Dimension] = []
    if not isinstance(space, dict) or not space:
        errors.append({"loc": "space", "msg": "required: an object of {path: dimension}, at least one"})
    elif len(space) > MAX_DIMENSIONS:
        errors.append({"loc": "space", "msg": f"at most {MAX_DIMENSIONS} dimensions"})
    else:
        dims = [d for path, spec in sorted(space.items()) if (d := parse_dimension(path, spec, errors))]
        for a, b in overlapping([d.path for d in dims]):
            errors.append({"loc": space_loc(b), "msg": f"lies inside {a}, which the space also sets"})
    objective = doc.get("objective")
    metric = direction = None
    if not isinstance(objective, dict) or not isinstance(objective.get("metric"), str) or not objective["metric"]:
        errors.append({"loc": "objective.metric", "msg": 'required: the metric to optimise, e.g. "val_accuracy"'})
    else:
        metric = objective["metric"]
        direction = objective.get("direction", "minimize" if minimised(metric) else "maximize")
        if direction not in ("maximize", "minimize"):
            errors.append({"loc": "objective.direction", "msg": "must be maximize or minimize"})
        errors += [{"loc": f"objective.{k}", "msg": "unknown field; an objective has metric, direction"}
                   for k in objective if k not in ("metric", "direction")]
    sampler = _named(doc, "sampler", SAMPLERS, "tpe", errors)
    if sampler is not None:
        seed = sampler.get("seed", secrets.randbelow(SEED_MAX))  # an omitted seed is drawn and recorded
        if not _number(seed, True) or not 0 <= seed <= SEED_MAX:
            errors.append({"loc": "sampler.seed", "msg": f"must be an integer from 0 to {SEED_MAX}"})
        rest = {k: v for k, v in sampler.items() if k != "seed"}
        sampler = {"name": sampler["name"], "seed": int(seed) if _number(seed, True) else 0,
                   **_settings("sampler", rest, SAMPLER_SETTINGS[sampler["name"]], errors)}
    pruner = _named(doc, "pruner", tuple(PRUNERS), "none", errors)
    if pruner is not None:
        pruner = {"name": pruner["name"], **_settings("pruner", pruner, PRUNERS[pruner["name"]], errors)}
    request = SweepRequest(name, doc.get("base"), dims, metric, direction, sampler, 0, 1, pruner)
    _budget(doc, request, errors, max_trials=max_trials, max_parallel=max_parallel, max_grid=max_grid)
    if errors:
        raise SweepError(errors)
    return request


def _budget(doc: dict, request: SweepRequest, errors: list[dict], *, max_trials: int, max_parallel: int,
            max_grid: int) -> None:
    grid = request.sampler is not None and request.sampler["name"] == "grid"
    size = None
    if grid and request.space and len(request.space) == len(doc.get("space") or {}):
        for d in request.space:
            if d.grid_size() is None:
                errors.append({"loc": space_loc(d.path), "msg": 'a grid needs a finite set of values: give a "step" '
                                                                'or list them with "choice"'})
            elif d.log:
                errors.append({"loc": f"{space_loc(d.path)}.log", "msg": "a grid takes no log scale: list the "
                                                                         'values with "choice"'})
        size = request.grid_size()
        if size and size > max_grid:
            errors.append({"loc": "space", "msg": f"the grid has {size:,} points; the limit is {max_grid:,} "
                                                  "(max_sweep_grid_points)"})
    trials = doc.get("trials")
    trials = size if trials is None and grid else trials
    if trials is None:
        errors.append({"loc": "trials", "msg": "required: how many trials to run (the budget)"})
    elif not _number(trials, True) or not 1 <= trials <= max_trials:
        errors.append({"loc": "trials", "msg": f"must be an integer from 1 to {max_trials} (max_sweep_trials)"})
    elif grid and size and trials > size:
        errors.append({"loc": "trials", "msg": f"the grid has only {size} points; a grid visits each once"})
    else:
        request.trials = int(trials)
    parallel = 1 if doc.get("parallel") is None else doc["parallel"]
    if not _number(parallel, True) or not 1 <= parallel <= max_parallel:
        errors.append({"loc": "parallel", "msg": f"must be an integer from 1 to {max_parallel} (max_sweep_parallel)"})
    else:
        request.parallel = int(parallel)


def resolve_space(request: SweepRequest, normalised_base: dict) -> list[dict]:
    """Errors for every space path the normalised base spec does not have (empty when all resolve)."""
    errors = []
    for d in request.space:
        try:
            resolve(normalised_base, d.path)
        except PathError as exc:
            errors.append({"loc": space_loc(d.path), "msg": str(exc)})
    return errors


def reported_metrics(spec: dict) -> tuple[set[str], set[str]]:
    """`(final, per_epoch)`: the metric names a job of this normalised spec reports at its end and every epoch."""
    names = ["loss", *(spec.get("training", {}).get("metrics") or [])]
    dataset = spec.get("dataset", {})
    per_epoch = set(names)
    if (dataset.get("validation_split") or 0) > 0:
        per_epoch |= {f"val_{n}" for n in names}
    final = set(per_epoch)
    if (dataset.get("test_split") or 0) > 0:
        final |= {f"test_{n}" for n in names}
    return final, per_epoch


def corners(request: SweepRequest) -> list[tuple[str | None, dict]]:
    """`(dimension path or None, params)` whose specs must be valid: all low, all high, and each dimension's
    extremes (every choice) with the others low."""
    low = {d.path: d.extremes()[0] for d in request.space}
    high = {d.path: d.extremes()[-1] for d in request.space}
    out: list[tuple[str | None, dict]] = [(None, low), (None, high)]
    for d in request.space:
        out += [(d.path, {**low, d.path: value}) for value in d.extremes()[1:]]
    return out
