"""Start docker-compose.yml's services as local processes, on this machine's PostgreSQL and Redis.

The commands and environment come from the compose file itself (interpolated with its own
`${VAR:-default}` defaults); only what cannot work outside containers is mapped: the `postgres`
and `redis` hostnames become 127.0.0.1 (a fresh database, a Redis db >= 8 and a private key
namespace), `trainyard` becomes this virtualenv's script, and the API listens on a free loopback port.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from tests.support import ROOT
from tests.support.processes import free_port
from tests.support.databases import delete_redis_keys

COMPOSE_FILE = ROOT / "docker-compose.yml"
POSTGRES_ADMIN = os.environ.get("TRAINYARD_TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRED_ENV = {"TRAINYARD_METRICS_TOKEN": "a-metrics-token"}  # the one variable the compose file cannot default
REDIS_DB = 11  # the compose stack test's own Redis database (>= 8, apart from the other tests' db 9)
_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}|"
                  r"(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value, env: dict[str, str]):
    """Compose's variable substitution: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `$VAR`,
    `$$`."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        current = env.get(name)
        if match.group("op") == ":-" and not current:
            return match.group("default")
        if match.group("op") == "-" and current is None:
            return match.group("default")
        op = match.group("op")
        if op in (":?", "?") and (not current if op == ":?" else current is None):
            raise ValueError(f"{name}: {match.group('default')}")  # compose refuses the file too
        return current or ""

    return _VAR.sub(sub, value)


def load_compose(env: dict[str, str] | None = None) -> dict:
    """docker-compose.yml parsed (YAML anchors and merge keys resolved) and interpolated with `env` only."""
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), dict(env or {}))


def local_url(url: str, services: dict, *, host_service: str, netloc: str, path: str) -> str:
    """A compose URL pointing at service `host_service`, re-pointed at this machine."""
    parts = urlsplit(url)
    assert parts.hostname == host_service and host_service in services, f"{url} must name the {host_service} service"
    return urlunsplit(parts._replace(netloc=netloc, path=path))


def local_command(command: list[str], *, port: int) -> list[str]:
    """The service's command with this virtualenv's `trainyard`/`python`, loopback host, the local port."""
    out = []
    for word in command:
        if word == "trainyard":
            word = str(Path(sys.executable).with_name("trainyard"))
        elif word == "python":
            word = sys.executable
        elif word == "0.0.0.0":
            word = "127.0.0.1"
        out.append(word.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
    if "--port" in out:
        out[out.index("--port") + 1] = str(port)
    return out


@dataclass
class Stack:
    """The running processes, the API's URL and a token for a fresh user."""

    compose: dict
    env: dict[str, str]
    url: str
    port: int
    logs: Path
    token: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, service: str, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a service's command (or `trainyard EXTRA...` in its environment) to completion."""
        command = self.compose["services"][service]["command"]
        argv = local_command(list(extra) if extra else command, port=self.port)
        return subprocess.run(argv, env=self.service_env(service), capture_output=True, text=True, timeout=timeout)

    def service_env(self, service: str) -> dict[str, str]:
        return {**self.env, **{k: str(v) for k, v in self.compose["services"][service].get("environment", {}).items()}}

    def start(self, name: str, service: str) -> None:
        argv = local_command(self.compose["services"][service]["command"], port=self.port)
        log = open(self.logs / f"{name}.log", "w")
        self.processes[name] = subprocess.Popen(argv, env=self.service_env(service), stdout=log,
                                                stderr=subprocess.STDOUT, cwd=self.logs)
        log.close()

    def healthy(self) -> bool:
        """The api service's own healthcheck command, pointed at the local port."""
        test = self.compose["services"]["api"]["healthcheck"]["test"]
        assert test[0] == "CMD"
        argv = local_command(test[1:], port=self.port)
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0

    def wait_healthy(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
            assert not dead, f"processes exited: {dead}\n{self.tail()}"
            if self.healthy():
                return
            time.sleep(1)
        raise AssertionError(f"the api never became healthy\n{self.tail()}")

    def wait_workers(self, count: int, seconds: float = 120) -> None:
        """Until `count` live workers listen on queue cpu (a Celery worker takes a while to boot)."""
        from trainyard.client import Client

        deadline = time.monotonic() + seconds
        with Client(self.url, self.token) as client:
            while time.monotonic() < deadline:
                if len([w for w in client.workers() if "cpu" in w.get("queues", [])]) >= count:
                    return
                time.sleep(0.5)
        raise AssertionError(f"fewer than {count} cpu workers came up\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        """The last lines of every process's log (for failure messages)."""
        out = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def create_database() -> tuple[str, str]:
    """A fresh PostgreSQL database: (its name, its URL without the driver)."""
    import psycopg

    name = f"trainyard_compose_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, urlunsplit(urlsplit(POSTGRES_ADMIN)._replace(path="/" + name))


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_stack(tmp: Path, cpu_workers: int = 2) -> tuple[Stack, str, str]:
    """migrate (to completion), api, `cpu_workers` worker-cpu, reconciler; then a token for a fresh user."""
    namespace = f"ty-compose-{uuid.uuid4().hex[:10]}:"
    compose = load_compose({"TRAINYARD_BROKER_NAMESPACE": namespace, "TRAINYARD_METRICS_TOKEN": "compose-metrics"})
    services = compose["services"]
    db_name, _ = create_database()
    admin = urlsplit(POSTGRES_ADMIN)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_")}
    port = free_port()
    stack = Stack(compose, {**base_env, "TRAINYARD_HOME": str(tmp / "home")}, f"http://127.0.0.1:{port}", port, tmp)
    for service in services.values():
        env = service.get("environment", {})
        if "TRAINYARD_DATABASE_URL" in env:
            env["TRAINYARD_DATABASE_URL"] = local_url(env["TRAINYARD_DATABASE_URL"], services, host_service="postgres",
                                                      netloc=admin.netloc, path="/" + db_name)
            env["TRAINYARD_BROKER_URL"] = local_url(env["TRAINYARD_BROKER_URL"], services, host_service="redis",
                                                    netloc="127.0.0.1:6379", path=f"/{REDIS_DB}")
        if "TRAINYARD_RATE_LIMIT_STORAGE_URL" in env:
            env["TRAINYARD_RATE_LIMIT_STORAGE_URL"] = local_url(env["TRAINYARD_RATE_LIMIT_STORAGE_URL"], services,
                                                                host_service="redis", netloc="127.0.0.1:6379",
                                                                path=f"/{REDIS_DB}")
    broker_url = services["api"]["environment"]["TRAINYARD_BROKER_URL"]
    try:
        migrated = stack.run("migrate")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        stack.start("api", "api")
        for n in range(cpu_workers):
            stack.start(f"worker-cpu-{n + 1}", "worker-cpu")
        stack.start("reconciler", "reconciler")
        stack.wait_healthy()
        created = stack.run("api", "trainyard", "token", "create", "--user", "compose-tests")
        assert created.returncode == 0, created.stderr
        stack.token = created.stdout.strip().splitlines()[-1]
        stack.wait_workers(cpu_workers)
    except BaseException:
        stack.stop()
        drop_database(db_name)
        delete_redis_keys(broker_url, namespace)
        raise
    return stack, db_name, broker_url + "|" + namespace


def service_missing() -> list[str]:
    """The service modules the live tests need that this tree does not have (yet)."""
    import importlib.util

    missing = []
    for name in ("trainyard.api.serve", "trainyard.worker.main", "trainyard.worker.reconciler", "trainyard.store.migrate"):
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def compose_config(tmp_path: Path, *args: str, env: dict[str, str] = REQUIRED_ENV) -> subprocess.CompletedProcess:
    """`docker-compose config` on a copy of the file in an empty folder: no .env, no environment but `env`."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (CI installs Debian's: apt-get install docker-compose)")
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yml")
    return subprocess.run([binary, "-f", str(tmp_path / "docker-compose.yml"), *args, "config"], cwd=tmp_path,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env}, capture_output=True, text=True,
                          timeout=120)
