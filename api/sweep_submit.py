"""Submitting a sweep: the request's own fields (core.sweeps.request), the base spec as any job's, every space path
against the normalised base, the objective against what the trials report, and the specs at the space's corners —
all before anything is stored or queued. Every error names its field: `base.model.layers[2].units`,
`space["model.layers[9].units"]`, `objective.metric`, `trials`, …"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from trainyard.api.errors import ApiError, invalid
from trainyard.api.submit import validate_submission
from trainyard.core.errors import SpecError
from trainyard.core.spec import normalised
from trainyard.core.sweeps.paths import apply, parse_path
from trainyard.core.sweeps.request import (SweepError, SweepRequest, corners, parse_request, reported_metrics,
                                           resolve_space, space_loc)
from trainyard.store.settings import Settings


def _spec_errors(doc: dict, *, db: Session, owner: str, settings: Settings) -> tuple[Any, list[dict]]:
    """`(spec, [])` for a valid job document, else `(None, errors)` as the job API would name them."""
    try:
        return validate_submission(doc, db=db, owner=owner, settings=settings), []
    except SpecError as exc:
        return None, exc.errors
    except ApiError as exc:
        if exc.status != 422:
            raise
        return None, exc.errors or [{"loc": "", "msg": exc.detail}]


def _within(loc: str, path: str) -> bool:
    """Whether the error location `loc` lies at or inside the space path `path`."""
    try:
        mine, theirs = parse_path(path), parse_path(loc.split(" ")[0])
    except Exception:  # noqa: BLE001 — a location that is not a path (e.g. "") lies inside nothing
        return False
    return theirs[:len(mine)] == mine


def _metric_errors(request: SweepRequest, spec: dict, where: str) -> list[dict]:
    final, per_epoch = reported_metrics(spec)
    if request.metric not in final:
        return [{"loc": "objective.metric", "msg": f"the trials{where} do not report {request.metric!r}; they "
                                                   f"report {', '.join(sorted(final))} (val_* needs a "
                                                   "dataset.validation_split, test_* a test_split)"}]
    if request.pruner["name"] != "none" and request.metric not in per_epoch:
        return [{"loc": "objective.metric", "msg": f"the {request.pruner['name']} pruner needs {request.metric!r} "
                                                   f"every epoch, but it is measured only at the end; per epoch "
                                                   f"the trials{where} report {', '.join(sorted(per_epoch))}"}]
    return []


def validate_sweep(doc: Any, *, db: Session, owner: str, settings: Settings) -> SweepRequest:
    """A checked request whose `base` is the normalised base spec, or a 422 listing every error."""
    try:
        request = parse_request(doc, max_trials=settings.max_sweep_trials, max_parallel=settings.max_sweep_parallel,
                                max_grid=settings.max_sweep_grid_points)
    except SweepError as exc:
        raise invalid(exc.errors) from None
    spec, errors = _spec_errors(request.base, db=db, owner=owner, settings=settings)
    if errors:
        raise invalid([{**e, "loc": f"base.{e['loc']}" if e.get("loc") else "base"} for e in errors])
    base = normalised(spec)
    errors = resolve_space(request, base) or _metric_errors(request, base, "")
    if errors:
        raise invalid(errors)
    request.base = base
    if request.pruner["name"] == "hyperband" and request.pruner.get("max_epochs") is None:
        request.pruner["max_epochs"] = base["training"]["epochs"]
    raise_corner_errors(request, db=db, owner=owner, settings=settings)
    return request


def raise_corner_errors(request: SweepRequest, *, db: Session, owner: str, settings: Settings) -> None:
    """422 when a spec at a corner of the space is invalid or would not report the objective."""
    errors, seen = [], set()
    for path, params in corners(request):
        spec, found = _spec_errors(apply(request.base, params), db=db, owner=owner, settings=settings)
        everything = ", ".join(f"{p} = {v!r}" for p, v in params.items())
        shown = everything if path is None else f"{params[path]!r}"
        for e in found:
            culprit = path or next((d.path for d in request.space if _within(e.get("loc", ""), d.path)), None)
            loc = space_loc(culprit) if culprit else "space"
            if culprit:
                others = ", ".join(f"{p} = {v!r}" for p, v in params.items() if p != culprit)
                shown = f"{params[culprit]!r}" + (f" (with {others})" if others else "")
            msg = f"at {shown} the trial's spec is invalid: {e['loc'] + ': ' if e.get('loc') else ''}{e['msg']}"
            if (loc, e.get("loc"), e["msg"]) not in seen:
                seen.add((loc, e.get("loc"), e["msg"]))
                errors.append({"loc": loc, "msg": msg})
        if spec is not None:
            for e in _metric_errors(request, normalised(spec), f" at {everything}"):
                if e["msg"] not in seen:
                    seen.add(e["msg"])
                    errors.append(e)
        if len(errors) >= 20:
            break
    if errors:
        raise invalid(errors)
