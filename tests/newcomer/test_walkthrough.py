"""The README, tried as a newcomer would from a fresh clone (issue 13 §3): tests/support/walkthrough.py runs every
command it shows, in its order, against a `make run` service. It takes a minute or two (the sweep is cut to 2
trials and course_notes.py to three numpy examples; the walkthrough's docstring says what else differs)."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

from tests.support import walkthrough

pytestmark = [pytest.mark.skipif(shutil.which("make") is None or shutil.which("curl") is None
                                 or shutil.which("git") is None, reason="needs make, curl and git"),
              pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="needs to run in the virtualenv")]


@pytest.fixture(scope="module")
def walked():
    walk = walkthrough.prepare()
    printed = walkthrough.run(walk)
    return walk, printed


def test_every_readme_command_runs_as_written_from_a_fresh_clone(walked):
    walk, printed = walked  # each step checked its own exit code (walkthrough.Walk.sh): the walk ran to its end
    assert walk.log[0][0] == "make run" and walk.log[-1][0] == "Ctrl-C (make run)" and len(walk.log) > 50
    assert "trainyard is up" in printed and "trainyard up: stopping" in printed


def test_the_walkthrough_covers_every_command_of_the_readme(walked):
    """Each `trainyard COMMAND [SUBCOMMAND]` the README's command-line block names was run."""
    walk, _ = walked
    readme = (walkthrough.ROOT / "README.md").read_text()
    block = walkthrough.readme_block(readme, "### From the command line", "sh")
    named = set()
    for line in block.splitlines():
        code = line.split("#")[0]
        words = re.findall(r"(?:trainyard |\| )(\w+)(?: (upload|list|show|wait|cancel|delete|create|revoke))?", code)
        top = None
        for command, sub in words:
            if command in ("datasets", "sweeps", "token"):
                top = command
            named.add(f"{top} {command}" if top and command not in ("datasets", "sweeps", "token") and not sub
                      else f"{command} {sub}".strip())
    ran = {" ".join(c.split()[1:3]) if c.split()[1] in ("datasets", "sweeps", "token") else c.split()[1]
           for c, _, _ in walk.log if c.startswith("trainyard ")}
    missing = {n for n in named if n not in ran}
    assert missing == set(), f"README commands the walk-through does not run: {sorted(missing)}"
    assert {"python readme_client.py", "python examples/course_notes.py"} <= {
        " ".join(c.split()[:2]) for c, _, _ in walk.log}
