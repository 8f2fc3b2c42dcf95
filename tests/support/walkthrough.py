"""A newcomer's first hour, as a script: every command the README shows, in its order, from a fresh clone.

    .venv/bin/python -m tests.support.walkthrough [--keep]     # prints each step and what it gave; exit 0 if all ran

It clones this repository's committed HEAD into a temporary folder and works there exactly as the README
says: `make run` (on a free port instead of 8000, with `UP_ARGS`), then, in "a second terminal at the
repository root" (a shell that ran `. .venv/bin/activate`), the Quickstart's curl lines, the command-line
block, `trainyard run`, the Python client block, and `python examples/course_notes.py`.

What it does differently from a person, and why:
- the clone's `.venv` is this virtualenv seen through symlinks (with the clone's own install stamps), not a
  new 2 GB install; `PYTHONPATH` makes every process import the clone's code, not this checkout's (the clone's
  folder is named `trainyard`, so from its parent `trainyard.core` is the clone's `core/`);
- `TRAINYARD_URL` points the client at the free port (the README documents it);
- the long parts are cut: the sweep and the Python block's sweep use a 2-trial, 3-epoch copy of
  `examples/digits_sweep.json` (README: 40 trials of 60 epochs), and `course_notes.py` runs `--only` three of
  its numpy examples, which take seconds (the three Keras models take minutes each, the scikit-learn ones
  tens of seconds on a busy machine; `examples/README.md`);
- `ID` in the README is the id the previous step printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import ROOT
from tests.support.processes import free_port

STEP_SECONDS = 240


@dataclass
class Walk:
    """The clone, the service it runs, and a log of every step."""

    clone: Path
    port: int
    log: list[tuple[str, int, str]] = field(default_factory=list)
    service: subprocess.Popen | None = None
    ids: dict[str, str] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)  # each sh() step's duration

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_") and k != "VIRTUAL_ENV"}
        env.update(PYTHONPATH=str(self.clone.parent), TRAINYARD_URL=f"http://127.0.0.1:{self.port}",
                   MPLBACKEND="Agg", TERM="dumb")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if not p.startswith(sys.prefix))  # nothing of this venv until `activate`
        return env

    def sh(self, command: str, *, expect: int | tuple[int, ...] = 0, timeout: float = STEP_SECONDS) -> str:
        """Run one README command in the activated shell at the clone's root; its stdout (stderr is logged)."""
        script = f". .venv/bin/activate && {command}"
        started = time.monotonic()
        proc = subprocess.run(["bash", "-c", script], cwd=self.clone, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        self.log.append((command, proc.returncode, (proc.stdout + proc.stderr)[-2000:]))
        self.seconds.append(time.monotonic() - started)
        expected = expect if isinstance(expect, tuple) else (expect,)
        if proc.returncode not in expected:
            raise StepFailed(command, proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout


class StepFailed(AssertionError):
    def __init__(self, command: str, code: int, out: str, err: str):
        super().__init__(f"`{command}` exited {code}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}")


def fresh_clone(into: Path) -> Path:
    """`git clone` of the committed HEAD, and a `.venv` that is this virtualenv under the clone's own stamps."""
    clone = into / "trainyard"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    venv = clone / ".venv"
    venv.mkdir()
    for entry in Path(sys.prefix).iterdir():
        if not entry.name.startswith(".installed"):
            (venv / entry.name).symlink_to(entry)
    later = time.time() + 5  # newer than the clone's pyproject.toml: `make run` installs nothing
    for stamp in (".installed-run", ".installed-test"):
        (venv / stamp).touch()
        os.utime(venv / stamp, (later, later))
    return clone


def readme_block(readme: str, heading: str, language: str) -> str:
    """The first ```language block after `heading`."""
    start = readme.index(heading)
    match = re.compile(rf"```{language}\n(.*?)```", re.DOTALL).search(readme, start)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


def start_service(walk: Walk) -> None:
    """`make run`, as the README's Set up says (on a free port): wait for the banner."""
    walk.service = subprocess.Popen(["make", "run", f"UP_ARGS=--port {walk.port}"], cwd=walk.clone, env=walk.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
    health = f"http://127.0.0.1:{walk.port}/api/v1/health"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if walk.service.poll() is not None:
            raise AssertionError(f"make run exited {walk.service.returncode}: {walk.service.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(health, timeout=2) as r:
                if r.status == 200:
                    walk.log.append(("make run", 0, "healthy"))
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("make run did not become healthy within 120 s")


def stop_service(walk: Walk) -> str:
    """Ctrl-C in the `make run` terminal; what it printed."""
    if walk.service is None or walk.service.poll() is not None:
        return ""
    os.killpg(walk.service.pid, signal.SIGINT)
    try:
        out, _ = walk.service.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(walk.service.pid, signal.SIGKILL)
        out, _ = walk.service.communicate()
    walk.log.append(("Ctrl-C (make run)", walk.service.returncode, out[-2000:]))
    return out


def small_sweep(walk: Walk) -> str:
    spec = json.loads((walk.clone / "examples" / "digits_sweep.json").read_text())
    spec.update(trials=2, parallel=1)
    spec["base"]["training"]["epochs"] = 3
    path = walk.clone / "small_sweep.json"
    path.write_text(json.dumps(spec))
    return path.name


def quickstart(walk: Walk, readme: str) -> None:
    """The Quickstart's curl lines, with the job id of the submit put where the README says JOB_ID."""
    lines = readme_block(readme, "## Quickstart", "sh").replace("8000", str(walk.port)).splitlines()
    commands, current = [], ""
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            commands.append(current)
            current = ""
    setup, submit, poll, predict = commands
    job = json.loads(walk.sh(f"{setup}; {submit}"))
    assert job["status"] == "queued", job
    walk.ids["quickstart"] = job["id"]
    for _ in range(240):
        polled = json.loads(walk.sh(f"{setup}; {poll.replace('JOB_ID', job['id'])}"))
        if polled["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    assert polled["status"] == "succeeded", polled
    answer = json.loads(walk.sh(f"{setup}; {predict.replace('JOB_ID', job['id'])}"))
    assert answer["predictions"] == [0, 1, 1, 0], answer  # as the README's comment says
    assert answer["classes"] == [0, 1]


def command_line(walk: Walk) -> None:
    """The README's command-line block, line by line (each `A | B | C` alternative in turn)."""
    out = walk.sh("trainyard submit examples/xor_relu_3.json --wait")
    assert "succeeded" in out, out
    job = json.loads(walk.sh("trainyard submit examples/xor_relu_3.json --json").splitlines()[-1])["id"]
    walk.sh(f"trainyard status {job}")
    walk.sh(f"trainyard wait {job} --quiet")
    walk.sh("trainyard list --status running --limit 50")
    assert job in walk.sh("trainyard list")
    walk.sh(f"trainyard history {job} --plot curves.png")
    assert (walk.clone / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    walk.sh(f"trainyard download {job}")
    assert (walk.clone / f"{job}.npz").is_file()
    walk.sh(f"trainyard download {job} -o model.npz")
    walk.sh(f"trainyard download {job} --format onnx")
    assert (walk.clone / f"{job}.onnx").is_file()
    out = walk.sh(f"trainyard predict {job} --inputs '[[0,1],[1,1]]'")
    assert "PREDICTION" in out and "0.6477" in out, out
    (walk.clone / "rows.csv").write_text("a,b\n0,1\n1,1\n")
    walk.sh(f"trainyard predict {job} --inputs rows.csv")
    (walk.clone / "data.csv").write_text("x1,x2,label\n0,0,no\n0,1,yes\n1,0,yes\n1,1,no\n0.1,0.9,yes\n0.9,0.1,yes\n")
    uploaded = json.loads(walk.sh("trainyard datasets upload data.csv --target label --json").splitlines()[-1])
    assert uploaded["target"] == "label", uploaded
    assert uploaded["id"] in walk.sh("trainyard datasets list")
    walk.sh(f"trainyard datasets show {uploaded['id']}")
    walk.sh(f"trainyard datasets delete {uploaded['id']}")
    for command in ("catalog", "workers", "health"):
        walk.sh(f"trainyard {command}")
    token = walk.sh("trainyard token create --user alice").splitlines()[-1]
    assert token.startswith("ty_")
    walk.sh("trainyard token create --user alice")
    walk.sh("trainyard token create --user ci --name ci --scopes read --expires 30d")
    bob = json.loads(walk.sh("trainyard token create --user bob --json").splitlines()[-1])
    assert "alice" in walk.sh("trainyard token list")
    walk.sh("trainyard token list --user alice")
    walk.sh(f"trainyard token revoke {token}")
    walk.sh(f"trainyard token revoke --id {bob['id']}")
    walk.sh("trainyard token revoke --user alice")
    walk.sh("trainyard token revoke --user ci --name ci")
    sweep_file = small_sweep(walk)
    walk.sh(f"trainyard sweep {sweep_file} --wait", timeout=600)
    sweep = json.loads(walk.sh("trainyard sweeps list --json").splitlines()[-1])["items"][0]["id"]
    walk.sh(f"trainyard sweeps show {sweep} --sort objective")
    walk.sh(f"trainyard sweeps wait {sweep}")
    walk.sh(f"trainyard sweeps delete {sweep}")
    long_sweep = json.loads((walk.clone / sweep_file).read_text())
    long_sweep["base"]["training"]["epochs"] = 100_000  # still running when it is cancelled
    (walk.clone / "long_sweep.json").write_text(json.dumps(long_sweep))
    started = json.loads(walk.sh("trainyard sweep long_sweep.json --json").splitlines()[-1])["id"]
    walk.sh(f"trainyard sweeps cancel {started}")
    walk.sh(f"trainyard sweeps wait {started} --quiet", expect=1)  # exit 0 only if it succeeded
    walk.sh(f"trainyard sweeps delete {started}")
    spec = json.loads((walk.clone / "examples" / "xor_relu_3.json").read_text())
    spec["training"]["epochs"] = 1_000_000  # long enough to be cancelled while queued or running
    (walk.clone / "long.json").write_text(json.dumps(spec))
    long = json.loads(walk.sh("trainyard submit long.json --json").splitlines()[-1])["id"]
    walk.sh(f"trainyard cancel {long}")
    walk.sh(f"trainyard wait {long} --quiet", expect=1)  # exit 0 only if it succeeded: it was cancelled
    walk.sh(f"trainyard delete {long}")
    walk.ids["cli"] = job


def local_run(walk: Walk) -> None:
    """`trainyard run SPEC.json [--save model.npz] [--quiet] [--json]` (the Quickstart's last paragraph)."""
    result = json.loads(walk.sh("trainyard run examples/and_perceptron.json --save and.npz --quiet").splitlines()[-1])
    assert result["status"] == "succeeded" and (walk.clone / "and.npz").is_file()
    walk.sh("trainyard run examples/xor_relu_3.json --json --quiet")


def python_client(walk: Walk, readme: str) -> None:
    """The README's Python block, as written (its sweep: the 3-trial copy)."""
    code = readme_block(readme, "### From Python", "python").replace("examples/digits_sweep.json", small_sweep(walk))
    (walk.clone / "readme_client.py").write_text(code)
    out = walk.sh("python readme_client.py", timeout=600)
    assert "succeeded" in out, out


def course_notes(walk: Walk) -> None:
    out = walk.sh("python examples/course_notes.py --only and_perceptron xor_relu_3 digits_32 mnist_15", timeout=600)
    assert "reproduced" in out, out
    assert not re.search(r"\d\.\d{8,}", out), out  # metrics for people: 0.9829, not 0.9828620394173093
    refused = [line for line in out.splitlines() if "not submitted" in line]  # no MNIST files here: a 422, said once
    assert len(refused) == 1 and out.count("mnist needs the four MNIST IDX files") == 1, out


def prepare() -> Walk:
    """A fresh clone in a temporary folder, and a free port for its service."""
    if sys.prefix == sys.base_prefix:
        raise RuntimeError("run this with the virtualenv's Python (.venv/bin/python)")
    return Walk(clone=fresh_clone(Path(tempfile.mkdtemp(prefix="trainyard-newcomer-"))), port=free_port())


def run(walk: Walk, keep: bool = False) -> str:
    """The whole walk-through; raises AssertionError (a StepFailed names the command) at the first problem.
    Returns what `make run` printed, up to and after Ctrl-C."""
    readme = (walk.clone / "README.md").read_text()
    try:
        start_service(walk)
        quickstart(walk, readme)
        local_run(walk)
        command_line(walk)
        python_client(walk, readme)
        course_notes(walk)
    finally:
        printed = stop_service(walk)
        if not keep:
            shutil.rmtree(walk.clone.parent, ignore_errors=True)
    return printed


def main(argv: list[str] | None = None) -> int:
    keep = "--keep" in (argv if argv is not None else sys.argv[1:])
    walk = prepare()
    code = 0
    started = time.monotonic()
    try:
        run(walk, keep=keep)
    except AssertionError as exc:
        print(f"walk-through failed: {exc}", file=sys.stderr)
        code = 1
    for command, status, _ in walk.log:
        print(f"[{status}] {command}")
    slowest = sorted(zip(walk.seconds, (c for c, _, _ in walk.log if c not in ("make run",))), reverse=True)[:5]
    print("slowest: " + "; ".join(f"{c[:60]} {t:.1f} s" for t, c in slowest))
    print(f"{len(walk.log)} steps in {time.monotonic() - started:.0f} s" + (f"; kept {walk.clone}" if keep else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
