"""The installed import names: every package is `trainyard.<folder>`, listed in pyproject, and no code imports a bare
`api`, `core`, `store`, `worker`, `client` or `migrations` (those would shadow, or be shadowed by, a user's own)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tokenize
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("api", "client", "core", "migrations", "store", "worker")
BARE = re.compile(rf"^\s*(?:from|import)\s+({'|'.join(FOLDERS)})\b", re.MULTILINE)
# The same inside a string: code a test or bench hands to `python -c` (`"import sys, core.spec; ..."`).
BARE_IN_STRING = re.compile(rf"\b(?:from|import)\s+(?:[\w.]+\s*,\s*)*({'|'.join(FOLDERS)})(?=\.\w|\s+import\b|\s*[;,]|\\n|\s*$)",
                            re.MULTILINE)


def tracked_python() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / name for name in names.stdout.split()]


def test_no_module_imports_a_bare_folder_name():
    found = [f"{path.relative_to(ROOT)}: {m.group(0).strip()}"
             for path in tracked_python() for m in BARE.finditer(path.read_text())]
    assert found == []


def test_no_code_in_a_string_imports_a_bare_folder_name():
    found = []
    for path in tracked_python():
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.STRING and BARE_IN_STRING.search(token.string):
                found.append(f"{path.relative_to(ROOT)}:{token.start[0]}: {BARE_IN_STRING.search(token.string).group(0)}")
    assert found == []


def test_every_package_folder_is_installed_under_trainyard():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {"trainyard." + str(init.parent.relative_to(ROOT)).replace("/", ".")
               for folder in FOLDERS for init in (ROOT / folder).rglob("__init__.py")}
    assert set(config["packages"]) == on_disk
    assert config["package-dir"] == {f"trainyard.{folder}": folder for folder in FOLDERS}


def test_the_installed_names_are_this_checkout_and_nothing_bare(tmp_path):
    # From a folder that is not the repository, `trainyard.core` is this checkout's core/ and `core` is not a module.
    probe = ("import importlib.util, trainyard.core, trainyard.api.ui; "
             f"print(trainyard.core.__file__); print([n for n in {FOLDERS!r} if importlib.util.find_spec(n)])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    core_file, bare = out.stdout.splitlines()
    assert Path(core_file) == ROOT / "core" / "__init__.py"
    assert bare == "[]"
