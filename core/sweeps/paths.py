"""Paths into a job spec, as a sweep's space names them: `training.optimizer.learning_rate`, `model.layers[0].units`.

A path is dot-separated field names, each optionally followed by `[index]`s. It is resolved against the
*normalised* base spec (every default filled in), so every field a job has can be named, and a field the spec
does not have (`training.foo`, `model.layers[9]` of a two-layer model) is refused before anything is queued.
"""

from __future__ import annotations

import copy
import re
from typing import Any

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d{1,6}\])*)")
_INDEX = re.compile(r"\[(\d+)\]")
MAX_PATH = 200


class PathError(ValueError):
    """A path that is malformed, or names something the spec does not have (the message says which)."""


def parse_path(path: str) -> list[str | int]:
    """`"model.layers[0].units"` → `["model", "layers", 0, "units"]`; PathError when malformed."""
    if not isinstance(path, str) or not 0 < len(path) <= MAX_PATH:
        raise PathError(f"a path is 1 to {MAX_PATH} characters")
    steps: list[str | int] = []
    for part in path.split("."):
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise PathError(f"{part!r} is not a field name with optional [index]es (e.g. model.layers[0].units)")
        steps.append(match.group(1))
        steps += [int(i) for i in _INDEX.findall(match.group(2))]
    return steps


def _where(steps: list[str | int]) -> str:
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out or "the spec"


def resolve(document: dict, path: str) -> Any:
    """The value at `path` in `document`; PathError naming the first step the document does not have."""
    node: Any = document
    steps = parse_path(path)
    for i, step in enumerate(steps):
        here = _where(steps[:i])
        if isinstance(step, int):
            if not isinstance(node, list):
                raise PathError(f"{here} is not a list")
            if step >= len(node):
                raise PathError(f"the spec has no {_where(steps[:i + 1])}: {here} has {len(node)} item"
                                f"{'' if len(node) == 1 else 's'}")
            node = node[step]
        else:
            if not isinstance(node, dict):
                raise PathError(f"{here} has no fields (it is {type(node).__name__ if node is not None else 'null'})")
            if step not in node:
                fields = ", ".join(sorted(node))
                raise PathError(f"unknown field {step!r} in {here}" + (f" (its fields: {fields})" if fields else ""))
            node = node[step]
    return node


def apply(document: dict, params: dict[str, Any]) -> dict:
    """A deep copy of `document` with each `path: value` of `params` set (every path must resolve)."""
    out = copy.deepcopy(document)
    for path, value in params.items():
        steps = parse_path(path)
        parent = resolve(out, _where(steps[:-1])) if len(steps) > 1 else out
        resolve(out, path)  # the leaf exists too
        parent[steps[-1]] = copy.deepcopy(value)
    return out


def overlapping(paths: list[str]) -> list[tuple[str, str]]:
    """Pairs `(a, b)` where path `a` contains `b` (setting both would be ambiguous)."""
    parsed = {p: parse_path(p) for p in paths}
    return [(a, b) for a in paths for b in paths
            if a != b and len(parsed[a]) < len(parsed[b]) and parsed[b][:len(parsed[a])] == parsed[a]]
