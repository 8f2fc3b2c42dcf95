"""`make run` installs only what running needs; `make test` adds the test tools (issue 13 §3: `make run` installed
pytest, schemathesis and the rest). Checked with `make -n`, which prints the commands without running them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_EXTRAS = re.search(r"^RUN_EXTRAS \?= (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).strip()

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(target: str, venv: Path) -> list[str]:
    out = subprocess.run(["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"], capture_output=True, text=True,
                         timeout=60, check=True)
    return [line for line in out.stdout.splitlines() if not line.startswith("make")]


def test_make_run_installs_the_run_extras_and_make_test_the_test_tools_too(tmp_path):
    venv = tmp_path / ".venv"
    run = dry_run("run", venv)
    assert "dev" not in RUN_EXTRAS.split(",") and {"keras", "fast"} <= set(RUN_EXTRAS.split(","))
    assert f"{venv}/bin/python -m pip install -q -e '.[{RUN_EXTRAS}]'" in run
    assert not any("dev" in line for line in run)
    assert run[-1].rstrip() == f"{venv}/bin/trainyard up"
    test = dry_run("test", venv)
    assert f"{venv}/bin/python -m pip install -q -e '.[dev,{RUN_EXTRAS}]'" in test
    assert test[-1] == f"{venv}/bin/python -m pytest -q"


def test_after_make_test_make_run_installs_nothing_more(tmp_path):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    later = time.time() + 60  # newer than pyproject.toml
    for stamp in (".installed-test", ".installed-run"):
        (venv / stamp).write_text("")
        os.utime(venv / stamp, (later, later))
    assert [line.rstrip() for line in dry_run("run", venv)] == [f"{venv}/bin/trainyard up"]
    (venv / ".installed-test").unlink()
    assert [line.rstrip() for line in dry_run("run", venv)] == [f"{venv}/bin/trainyard up"]  # a run install suffices
    assert f"'.[dev,{RUN_EXTRAS}]'" in " ".join(dry_run("test", venv))


def test_make_run_passes_up_args_to_trainyard_up(tmp_path):
    venv = tmp_path / ".venv"
    out = subprocess.run(["make", "-n", "-C", str(ROOT), "run", f"VENV={venv}", "UP_ARGS=--port 8123"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert [line for line in out.splitlines() if not line.startswith("make")][-1] == (
        f"{venv}/bin/trainyard up --port 8123")
