"""What the user gave: the field paths present in the raw spec document, computed once before anything is filled.

A path is written as errors name fields: `training.optimizer.learning_rate`,
`model.layers[0].kernel_initializer`. A named object given as a bare name (`"optimizer": "sgd"`)
gives its own path only, none of its parameters. The defaults (`core/spec/defaults.py`) fill
only what is not in this set; nothing else asks whether a value was given or defaulted.
"""

from __future__ import annotations

from typing import Any

# Paths the spec accepts in one place and keeps in another (models.JobSpec._validation_split_alias).
MOVED = {"training.validation_split": "dataset.validation_split"}


def given_paths(document: Any) -> frozenset[str]:
    """Every field path present in `document` (a spec as the user sent it)."""
    paths: set[str] = set()
    _walk(document, "", paths)
    return frozenset(MOVED.get(path, path) for path in paths)


def _walk(node: Any, prefix: str, paths: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            _walk(value, path, paths)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            path = f"{prefix}[{i}]"
            paths.add(path)
            _walk(value, path, paths)
