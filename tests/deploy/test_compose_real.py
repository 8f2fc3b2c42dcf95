"""docker-compose.yml, run for real (issue 14 item 7; issue 13 §2 monitoring): images built, containers started.

The stack (postgres, redis, migrate, api, proxy, two worker-cpu, reconciler and, from the monitoring profile,
Flower) comes up from the repository's compose file with the classic builder; the tests reach it only through
the proxy's published port on 127.0.0.1 and `docker-compose exec`; the containers talk over the network
compose creates. Jobs run on both workers; a worker container killed mid-job leaves its job to the other,
which resumes it from its checkpoint with every epoch of history once; the service scales to three workers;
Celery's own tools see the workers. Everything is removed afterwards (`down -v`); the images stay, so a second
run on the same machine builds nothing. Skipped, with the reason, where no Docker daemon answers.

The images are built with TRAINYARD_EXTRAS="" (numpy and scikit-learn: these tests run numpy jobs); the
default image adds the keras extra, which the build takes from the same line of the Dockerfile.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.request import urlopen

import pytest

from trainyard.client import Client

from tests.support.dockerkit import ComposeProject, docker_unavailable, ensure_standins, remove_stale_projects
from tests.support.processes import free_port, wait_for

pytestmark = pytest.mark.timeout(1500)

ROOT = Path(__file__).resolve().parents[2]
EVERY = 200  # checkpoint_every of the job whose worker is killed
POLL = 0.5  # seconds between two looks at the stack (each one a request through the proxy)
IMAGES = {"TRAINYARD_IMAGE": "trainyard-ci/trainyard:numpy", "TRAINYARD_PROXY_IMAGE": "trainyard-ci/proxy:latest",
          "TRAINYARD_FLOWER_IMAGE": "trainyard-ci/flower:latest"}


def moons(epochs: int, seed: int, checkpoint_every: int | None = None, name: str = "compose") -> dict:
    """A small moons job: about a millisecond an epoch (ten mini-batches)."""
    training = {"epochs": epochs, "batch_size": 16, "seed": seed, "optimizer": {"name": "adam", "learning_rate": 0.05}}
    if checkpoint_every:
        training["checkpoint_every"] = checkpoint_every
    return {"name": name, "dataset": {"builtin": "moons"}, "training": training,
            "model": {"layers": [{"type": "dense", "units": 4, "activation": "relu"},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]}}


def epoch(job) -> int:
    return job.progress["epoch"]


class Stack:
    """The running project, a client of its API through the proxy, and what the tests learned."""

    def __init__(self, project: ComposeProject, url: str, flower_url: str):
        self.project, self.url, self.flower_url = project, url, flower_url
        self.token = ""
        self.killed: dict[str, str] = {}  # the killed container → the worker it ran

    def client(self) -> Client:
        return Client(self.url, self.token)

    def live_cpu_workers(self) -> set[str]:
        with self.client() as client:
            return {w["name"] for w in client.workers() if "cpu" in w.get("queues", [])}

    def worker_containers(self, job_ids: list[str]) -> dict[str, set[str]]:
        """job → the worker containers whose logs say they ran an attempt of it."""
        return {job_id: set(self.project.attempts("worker-cpu", job_id)) for job_id in job_ids}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    reason = docker_unavailable()
    if reason:
        pytest.skip(f"docker-compose.yml cannot run here: {reason}")
    remove_stale_projects("tyci")  # left by a run killed before its teardown
    ensure_standins()
    api_port, flower_port = free_port(), free_port()
    project = ComposeProject(
        name=f"tyci{uuid.uuid4().hex[:8]}", workdir=tmp_path_factory.mktemp("compose"), profiles=("monitoring",),
        variables={**IMAGES, "TRAINYARD_METRICS_TOKEN": "compose-real-metrics", "TRAINYARD_EXTRAS": "",
                   "TRAINYARD_API_PORT": str(api_port), "TRAINYARD_FLOWER_PORT": str(flower_port),
                   "TRAINYARD_CELERY_MONITORING": "true", "TRAINYARD_API_WORKERS": "1"})
    started = time.monotonic()
    try:
        # The classic builder (docker-compose 1 builds through the engine's API): api's image is the one every
        # trainyard service runs; proxy and flower have their own.
        project.compose("build", "api", "proxy", "flower", timeout=1800)
        built = time.monotonic()
        project.compose("up", "-d", "--no-build", "--scale", "worker-cpu=2", timeout=600)
        stack = Stack(project, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{flower_port}")
        wait_for(lambda: _healthy(stack.url), 180, "the API through the proxy", POLL, project.logs_tail)
        created = project.exec("api", "trainyard", "token", "create", "--user", "compose-ci")
        assert created.returncode == 0, created.stdout + created.stderr
        stack.token = created.stdout.strip().splitlines()[-1]
        wait_for(lambda: len(stack.live_cpu_workers()) == 2, 120, "two live cpu workers", POLL, project.logs_tail)
        print(f"\ncompose stack: images built in {built - started:.0f} s, up and healthy in "
              f"{time.monotonic() - built:.0f} s")
        yield stack
    finally:
        project.down()
    assert project.containers("worker-cpu", running_only=False) == []


def _healthy(url: str) -> bool:
    try:
        with urlopen(f"{url}/api/v1/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_jobs_pushed_through_the_proxy_run_on_both_workers(stack):
    containers = stack.project.containers("worker-cpu")
    assert len(containers) == 2
    with stack.client() as client:
        jobs = [client.submit(moons(600, seed)).id for seed in range(4)]
        with ThreadPoolExecutor(4) as pool:
            finals = list(pool.map(lambda job_id: stack.client().wait(job_id, timeout=300, progress=False), jobs))
    assert [(job.status, job.attempts, job.progress["epoch"]) for job in finals] == [("succeeded", 1, 600)] * 4, \
        [job.error for job in finals]
    ran = stack.worker_containers(jobs)
    assert all(len(where) == 1 for where in ran.values()), ran  # one attempt each, in one container
    assert set().union(*ran.values()) == set(containers), ran  # both workers trained


def test_a_killed_worker_container_s_job_resumes_on_the_other_from_its_checkpoint(stack):
    project = stack.project
    epochs = 15 * EVERY
    with stack.client() as client:
        job_id = client.submit(moons(epochs, seed=7, checkpoint_every=EVERY, name="victim")).id
        job = wait_for(lambda: (j := client.get(job_id)).status == "running" and epoch(j) >= 2 * EVERY + 50 and j,
                       180, "the job past its second checkpoint", POLL, project.logs_tail)
        (victim,) = project.attempts("worker-cpu", job_id)
        project.kill(victim)
        at_kill = epoch(client.get(job_id))  # history the killed attempt had flushed (its checkpoint is at most this)
        stack.killed[victim] = job.data["worker"]
        assert epoch(job) < epochs
        final = client.wait(job_id, timeout=400, progress=False)
        history = client.history(job_id)
    assert (final.status, final.error, epoch(final), final.attempts) == ("succeeded", None, epochs, 2), final.error
    assert [row["epoch"] for row in history] == list(range(1, epochs + 1))  # each epoch once, in order
    ran = project.attempts("worker-cpu", job_id)
    [(first, first_worker, _)] = ran.pop(victim)
    [(other, [(second, second_worker, resumed_after)])] = ran.items()
    assert (first, second) == (1, 2) and other != victim and second_worker != first_worker
    assert final.data["worker"] == second_worker
    # It resumed from the killed attempt's last checkpoint: after its second at least, a checkpoint's epoch, and
    # no later than what the killed attempt reported (one more checkpoint may have been on its way).
    assert resumed_after >= 2 * EVERY and resumed_after % EVERY == 0 and resumed_after <= at_kill + EVERY, \
        (resumed_after, at_kill)
    print(f"\nkilled {victim[:12]} at epoch {at_kill}; attempt 2 resumed on {other[:12]} after epoch {resumed_after}")


def test_the_service_scales_to_three_workers(stack):
    project = stack.project
    project.compose("up", "-d", "--no-build", "--no-recreate", "--scale", "worker-cpu=3", "worker-cpu")
    containers = project.containers("worker-cpu")
    assert len(containers) == 3
    dead = set(stack.killed.values())
    wait_for(lambda: len(stack.live_cpu_workers() - dead) == 3, 120, "three live cpu workers", POLL, project.logs_tail)
    with stack.client() as client:
        jobs = [client.submit(moons(600, seed)).id for seed in range(10, 16)]
        with ThreadPoolExecutor(6) as pool:
            finals = list(pool.map(lambda job_id: stack.client().wait(job_id, timeout=300, progress=False), jobs))
    assert [job.status for job in finals] == ["succeeded"] * 6, [job.error for job in finals]
    ran = stack.worker_containers(jobs)
    assert set().union(*ran.values()) == set(containers), ran  # the new container trained too


def test_celery_inspect_and_flower_see_the_workers(stack):
    """With TRAINYARD_CELERY_MONITORING on, Celery's remote control and Flower see what GET /workers sees."""
    workers = stack.live_cpu_workers() - set(stack.killed.values())
    ping = stack.project.exec("api", "trainyard", "celery", "inspect", "ping", "--timeout", "5")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert set(re.findall(r"^->\s+(\S+): OK", ping.stdout, re.M)) == workers, ping.stdout

    def flower_workers() -> set[str]:
        try:
            with urlopen(f"{stack.flower_url}/workers?refresh=1&json=1", timeout=10) as response:
                rows = json.load(response)["data"]
        except OSError:
            return set()
        return {row["hostname"] for row in rows if row.get("status")}

    # Flower counts a worker online from its heartbeats (every 2 s); the killed one is offline.
    wait_for(lambda: flower_workers() == workers, 60, f"Flower listing {sorted(workers)}", POLL,
             stack.project.logs_tail)
