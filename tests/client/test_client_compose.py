"""docker-compose.yml: it validates, and its services' commands run the real service on this machine."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.support import ROOT
from tests.support.composestack import REQUIRED_ENV, compose_config, load_compose

TRAINYARD_SERVICES = {"migrate", "api", "worker-cpu", "worker-gpu", "reconciler"}
XOR = json.loads((ROOT / "examples" / "xor_relu.json").read_text())


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["default", "gpu"])
def test_compose_file_validates_with_no_env_file(tmp_path, profile):
    result = compose_config(tmp_path, *profile)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) >= {"postgres", "redis"} | TRAINYARD_SERVICES
    env = services["api"]["environment"]
    assert env["TRAINYARD_DATABASE_URL"] == "postgresql+psycopg://trainyard:trainyard@postgres:5432/trainyard"
    assert env["TRAINYARD_BROKER_URL"] == "redis://redis:6379/0"
    assert "WARNING" not in result.stderr, result.stderr  # no unset variable without a default


def test_compose_file_shape():
    services = load_compose(REQUIRED_ENV)["services"]
    for name in TRAINYARD_SERVICES:
        # the API starts as `python -m trainyard.api.serve` so that gevent patches the standard library before anything
        assert services[name]["command"][:3] == ["python", "-m", "trainyard.api.serve"] if name == "api" \
            else services[name]["command"][0] == "trainyard"
        assert "container_name" not in services[name]
        assert services[name]["environment"]["TRAINYARD_DATABASE_URL"].startswith("postgresql+psycopg://")
    for name in TRAINYARD_SERVICES - {"migrate"}:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["restart"] == "no"
    assert "ports" not in services["worker-cpu"]  # so `--scale worker-cpu=N` works
    assert services["worker-cpu"]["command"][:4] == ["trainyard", "worker", "--queues", "cpu"]
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["command"][:4] == ["trainyard", "worker", "--queues", "gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    # One Dockerfile stage, its extras chosen by a build argument: keras by default (CPU workers train Keras
    # jobs and the API predicts with them), gpu for the GPU worker, monitoring (Flower) for the flower service.
    assert gpu["build"]["args"] == {"EXTRAS": "gpu"} and services["api"]["build"]["args"] == {"EXTRAS": "keras"}
    assert gpu["image"] != services["api"]["image"]
    flower = services["flower"]
    assert flower["profiles"] == ["monitoring"] and flower["build"]["args"] == {"EXTRAS": "monitoring"}
    assert flower["command"][:3] == ["trainyard", "celery", "flower"]
    assert [port.split(":")[0] for port in flower["ports"]] == ["127.0.0.1"]  # Flower has no login: loopback only
    assert {s["environment"]["TRAINYARD_CELERY_MONITORING"] for s in services.values() if "environment" in s
            and "TRAINYARD_BROKER_URL" in s["environment"]} == {"false"}  # off unless the operator turns it on
    assert "/api/v1/health" in " ".join(services["api"]["healthcheck"]["test"])
    assert any(v.startswith("postgres-data:") for v in services["postgres"]["volumes"])


def test_compose_services_train_jobs_as_local_processes(compose_stack, live):
    """api + migrate + two worker-cpu + reconciler, started from the compose file's commands, train jobs."""
    assert compose_stack.healthy()
    assert {p: proc.poll() for p, proc in compose_stack.processes.items()} == dict.fromkeys(compose_stack.processes)
    with ThreadPoolExecutor(4) as pool:
        jobs = [live.submit({**XOR, "name": f"compose-{n}", "training": {**XOR["training"], "seed": n}})
                for n in range(4)]
        finals = list(pool.map(lambda job: live.wait(job.id, timeout=180, progress=False), jobs))
    assert [job.status for job in finals] == ["succeeded"] * 4, [job.error for job in finals]
    workers = live.workers()
    assert len([w for w in workers if "cpu" in w.get("queues", [])]) >= 2, workers
    again = compose_stack.run("migrate")  # the one-shot service is safe to run again
    assert again.returncode == 0, again.stderr


def test_dockerfile_has_one_stage_and_every_package_and_extra_the_compose_file_builds():
    dockerfile = (ROOT / "Dockerfile").read_text()
    # The classic builder (no BuildKit) builds every stage before its target: with one stage a CPU image never
    # builds the GPU one (issue 14 item 7), and the proxy has its own Dockerfile.
    assert [line for line in dockerfile.splitlines() if line.startswith("FROM ")] == ["FROM python:${PYTHON_VERSION}-slim"]
    services = load_compose(REQUIRED_ENV)["services"]
    builds = [s["build"] for s in services.values() if "build" in s]
    assert all("target" not in b and (ROOT / b.get("dockerfile", "Dockerfile")).is_file() for b in builds)
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {b["args"]["EXTRAS"] for b in builds if "args" in b} <= set(extras)
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = set(tomllib.loads(pyproject)["tool"]["setuptools"]["package-dir"].values())  # the folders
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")}
    assert set(packages) <= copied, f"the image misses packages: {set(packages) - copied}"
    # CUDA comes only with the gpu extra, which only the gpu stage installs.
    base_dependencies = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    keras_extra = next(line for line in pyproject.splitlines() if line.startswith("keras ="))
    assert "tensorflow" not in base_dependencies and "and-cuda" not in keras_extra
    assert "ARG EXTRAS=keras" in dockerfile and "optional-dependencies'][e]" in dockerfile
