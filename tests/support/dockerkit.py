"""Run docker-compose.yml for real: the Docker engine, the stand-in base images, and one compose project.

`docker_unavailable()` says why the real compose test cannot run here (None when it can): it needs the
`docker` and `docker-compose` commands and a daemon that answers. `.ci/run` starts one where it can.
`ensure_standins()` builds local stand-ins for the base images when no registry can be reached
(tests/deploy/standins/build.sh; cached: a machine pays for them once). `ComposeProject` wraps one project
(its own name, ports and .env), talking to the engine only through the `docker-compose` and `docker` commands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import ROOT

STANDINS = ROOT / "tests" / "deploy" / "standins" / "build.sh"
BASE_IMAGES = ("python:3.11-slim", "postgres:16-alpine", "redis:7-alpine")  # what the Dockerfiles and compose name


def docker_unavailable() -> str | None:
    """Why docker-compose.yml cannot be run here, or None."""
    for command, package in (("docker", "docker.io"), ("docker-compose", "docker-compose")):
        if shutil.which(command) is None:
            return f"`{command}` is not installed (apt-get install {package}; .ci/run does)"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=30)
    except subprocess.TimeoutExpired:
        return "the Docker daemon did not answer `docker info` within 30 s"
    if info.returncode != 0 or not info.stdout.strip():
        return ("no Docker daemon answers (start one as root: `dockerd > /tmp/dockerd.log 2>&1 &`; .ci/run does): "
                + (info.stderr.strip().splitlines() or [""])[-1])
    return None


def image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True, timeout=60).returncode == 0


def ensure_standins() -> None:
    """The base images, from the registry's copies already on this machine or built from Debian's packages."""
    if all(image_exists(name) for name in BASE_IMAGES):
        return
    built = subprocess.run(["bash", str(STANDINS)], capture_output=True, text=True, timeout=1200)
    if built.returncode != 0:
        raise RuntimeError(f"building the stand-in base images failed:\n{built.stdout}\n{built.stderr}")


def remove_stale_projects(prefix: str, older_than_seconds: float = 3600) -> list[str]:
    """Remove the compose projects named `prefix…` whose containers are all older than this (a run that was killed
    before its `down`: their `restart: unless-stopped` containers would come back with the next dockerd)."""
    import datetime as dt

    listed = subprocess.run(["docker", "ps", "-a", "-q", "--no-trunc", "--filter", "label=com.docker.compose.project"],
                            capture_output=True, text=True, timeout=60, check=True).stdout.split()
    if not listed:
        return []
    rows = subprocess.run(["docker", "inspect", "-f", '{{index .Config.Labels "com.docker.compose.project"}} '
                           "{{.Created}}", *listed], capture_output=True, text=True, timeout=60).stdout.split("\n")
    now, newest = dt.datetime.now(dt.timezone.utc), {}
    for row in filter(None, rows):
        project, created = row.split(" ", 1)
        if project.startswith(prefix):
            when = dt.datetime.fromisoformat(created.strip()[:26].rstrip("Z") + "+00:00")
            newest[project] = max(newest.get(project, when), when)
    stale = sorted(p for p, when in newest.items() if (now - when).total_seconds() > older_than_seconds)
    for project in stale:
        ids = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                             capture_output=True, text=True, timeout=60).stdout.split()
        subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, timeout=300)
        for kind in ("network", "volume"):
            names = subprocess.run(["docker", kind, "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                                   capture_output=True, text=True, timeout=60).stdout.split()
            if names:
                subprocess.run(["docker", kind, "rm", *names], capture_output=True, timeout=120)
    return stale


@dataclass
class ComposeProject:
    """One docker-compose project of the repository's docker-compose.yml, with its own variables (no .env)."""

    name: str
    variables: dict[str, str]
    workdir: Path
    profiles: tuple[str, ...] = ()
    log: list[str] = field(default_factory=list)  # every command run and how long, for the report

    def __post_init__(self) -> None:
        # An empty env file, so a developer's .env next to the compose file changes nothing here.
        self.env_file = self.workdir / "compose.env"
        self.env_file.write_text("")

    def environment(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "LANG")}
        return {**keep, **self.variables}

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        """`docker-compose -p NAME -f docker-compose.yml [--profile P] ARGS…`; raises with its output on failure."""
        profiles = [word for profile in self.profiles for word in ("--profile", profile)]
        argv = ["docker-compose", "--ansi", "never", "-p", self.name, "-f", str(ROOT / "docker-compose.yml"),
                "--project-directory", str(ROOT), "--env-file", str(self.env_file), *profiles, *args]
        result = subprocess.run(argv, cwd=ROOT, env=self.environment(), capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def exec(self, service: str, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A command in the service's first container (no terminal), not checked."""
        return self.compose("exec", "-T", service, *command, timeout=timeout, check=False)

    def containers(self, service: str, *, running_only: bool = True) -> list[str]:
        """The ids of the service's containers (running ones by default)."""
        argv = ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={self.name}",
                "--filter", f"label=com.docker.compose.service={service}"]
        if not running_only:
            argv.append("--all")
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout.split()

    def container_log(self, container: str) -> str:
        result = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=60)
        return result.stdout + result.stderr

    def kill(self, container: str) -> None:
        subprocess.run(["docker", "kill", container], capture_output=True, timeout=60, check=True)

    def attempts(self, service: str, job_id: str) -> dict[str, list[tuple[int, str, int]]]:
        """container → `(attempt, worker, resumed after epoch)` of the job, from each container's own log lines."""
        pattern = re.compile(rf"job {job_id}: attempt (\d+) on (\S+?)(?:, resuming after epoch (\d+))?$", re.M)
        found = {}
        for container in self.containers(service, running_only=False):
            rows = [(int(a), w, int(e or 0)) for a, w, e in pattern.findall(self.container_log(container))]
            if rows:
                found[container] = rows
        return found

    def logs_tail(self, lines: int = 40) -> str:
        result = self.compose("logs", "--no-color", "--tail", str(lines), check=False, timeout=120)
        return result.stdout[-20000:]

    def down(self) -> None:
        """Every container, network and volume of the project (the images stay: the next run reuses them)."""
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=300, check=False)
