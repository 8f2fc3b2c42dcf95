"""The API's shared modules are leaves (issue 11, seam 4): they import neither the app factory nor a blueprint,
not even inside a function, and the `/api/v1` prefix is written in one place (api.urls)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import trainyard.api

API = Path(trainyard.api.__file__).parent
REPOSITORY = API.parent
# The modules the factory and the blueprints share: each must be importable without either.
LEAVES = ("errors", "urls", "jsonio", "logtext", "views", "context", "scopes", "params", "schemas")
# The service's packages; the client talks HTTP and keeps its own copy (it must not import the service's packages:
# tests/client/test_client_cli.py).
SERVICE = ("api", "core", "store", "worker")


def _module_name(path: Path) -> str:
    parts = [part for part in path.relative_to(API).with_suffix("").parts if part != "__init__"]
    return ".".join(["trainyard.api", *parts])


MODULES = {_module_name(path): path for path in API.rglob("*.py")}
BLUEPRINTS = {name for name, path in MODULES.items() if "Blueprint(" in path.read_text()}
FORBIDDEN = BLUEPRINTS | {"trainyard.api.app"}


def _imports(module: str) -> set[str]:
    """The trainyard.api modules `module` imports anywhere in its source, function bodies included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # from trainyard.api import jobs
    return found & MODULES.keys()


def _path_to_forbidden(start: str) -> list[str] | None:
    """The import chain from `start` to the factory or a blueprint, or None (breadth first: the shortest)."""
    chains = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for imported in sorted(_imports(module)):
            if imported in chains:
                continue
            chains[imported] = chains[module] + [imported]
            if imported in FORBIDDEN:
                return chains[imported]
            queue.append(imported)
    return None


def test_the_blueprints_are_found():
    assert {"trainyard.api.jobs", "trainyard.api.datasets", "trainyard.api.sweeps"} <= BLUEPRINTS
    assert not {f"trainyard.api.{leaf}" for leaf in LEAVES} & BLUEPRINTS


@pytest.mark.parametrize("leaf", LEAVES)
def test_a_shared_module_imports_neither_the_app_nor_a_blueprint(leaf):
    chain = _path_to_forbidden(f"trainyard.api.{leaf}")
    assert chain is None, " imports ".join(chain)


def test_importing_the_shared_modules_loads_neither_the_app_nor_a_blueprint():
    code = ("import sys\n"
            + "".join(f"import trainyard.api.{leaf}\n" for leaf in LEAVES)
            + "print(' '.join(sorted(m for m in sys.modules if m.startswith('trainyard.api'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPOSITORY)
    loaded = set(result.stdout.split())
    assert {f"trainyard.api.{leaf}" for leaf in LEAVES} <= loaded
    assert not loaded & FORBIDDEN


def _api_prefix_literals(path: Path) -> list[int]:
    """Lines of `path` with a string (or an f-string's text) that starts with /api/v1; docstrings aside."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            and node.value.startswith("/api/v1")]


def test_the_api_prefix_is_written_once():
    found = [f"{path.relative_to(REPOSITORY)}:{line}"
             for package in SERVICE for path in sorted((REPOSITORY / package).rglob("*.py"))
             for line in _api_prefix_literals(path)]
    assert len(found) == 1 and found[0].startswith("api/urls.py:"), found


def test_prefix_is_defined_only_in_urls():
    from trainyard.api.urls import PREFIX

    defined = {f"{path.relative_to(REPOSITORY)}" for path in API.rglob("*.py")
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, (ast.Assign, ast.AnnAssign))
               for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
               if isinstance(target, ast.Name) and target.id == "PREFIX"}
    assert PREFIX == "/api/v1" and defined == {"api/urls.py"}
