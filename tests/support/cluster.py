"""Real processes for the reliability tests: a service on PostgreSQL + Redis, a private Redis server, a TCP proxy.

`Cluster` starts `trainyard.worker.main` workers (each in its own process group, so a test can
SIGKILL one pool child or the whole worker), `trainyard.worker.reconciler` and the API under
gunicorn, all with one Settings; the test itself observes the database directly
(`observer` settings: no proxy in between). Nothing here is mocked: the processes are
the service's own entry points and the broker and database are real servers.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Callable, Iterator

import requests
from sqlalchemy.engine import make_url

from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.jobs import history_rows
from trainyard.store.migrate import upgrade
from trainyard.store.models import Artifact, Job, Worker
from trainyard.store.settings import Settings
from trainyard.store.tokens import create_token
from trainyard.worker.app import create_celery

from tests.support.processes import free_port, start_process, stop_process, wait_for
from tests.support.service import Submitter


def xor_spec(epochs: int, checkpoint_every: int | None = None, seed: int = 1, name: str = "xor") -> dict:
    """A tiny XOR job: many cheap epochs (0.1 to 1 ms each, as loaded as the machine is)."""
    training = {"epochs": epochs, "batch_size": 4, "seed": seed, "optimizer": {"name": "adam", "learning_rate": 0.05}}
    if checkpoint_every:
        training["checkpoint_every"] = checkpoint_every
    return {"name": name, "dataset": {"builtin": "xor"},
            "model": {"layers": [{"type": "dense", "units": 4, "activation": "relu"},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": training}


def moons_spec(epochs: int, checkpoint_every: int | None = None, seed: int = 1, name: str = "moons") -> dict:
    """A small moons job: about 1 ms an epoch (10 mini-batches), so a kill or an outage lands mid-training."""
    spec = xor_spec(epochs, checkpoint_every, seed, name)
    spec["dataset"] = {"builtin": "moons"}
    spec["training"]["batch_size"] = 16
    return spec


def children(pid: int) -> list[int]:
    """The direct children of `pid` (a Celery worker's pool processes)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


class Cluster(Submitter):
    """One service: its settings, a direct database session factory, its processes and their logs."""

    def __init__(self, settings: Settings, observer: Settings):
        self.settings, self.observer = settings, observer
        self.logs = settings.home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        upgrade(observer)
        self.engine = make_engine(observer)
        self.factory = make_sessionmaker(self.engine)
        with session_scope(self.factory) as session:
            self.token, user = create_token(session=session, user_name="alice")
            self.owner = user.id
        self.celery = create_celery(observer)
        self.processes: dict[str, subprocess.Popen] = {}
        self.api_url = ""
        self.proxy: TcpProxy | None = None  # set by cluster(db_proxy=True)
        self.redis: RedisServer | None = None  # a test's private broker, when it has one

    # --- processes ---------------------------------------------------------------------------
    def start(self, name: str, argv: list[str], settings: Settings | None = None) -> subprocess.Popen:
        self.processes[name] = start_process(settings or self.settings, argv, self.logs / f"{name}.log")
        return self.processes[name]

    def start_worker(self, name: str, concurrency: int = 1, *, program: tuple[str, ...] = ("-m", "trainyard.worker.main"),
                     settings: Settings | None = None, wait: bool = True) -> subprocess.Popen:
        """A `trainyard worker` on queue cpu; with `wait`, until it is registered and Celery says ready."""
        proc = self.start(name, [*program, "--queues", "cpu", "--concurrency", str(concurrency)], settings)
        if wait:
            self.wait_worker_ready(name)
        return proc

    def wait_worker_ready(self, name: str, timeout: float = 60) -> None:
        proc = self.processes[name]
        log = self.logs / f"{name}.log"

        def ready():
            assert proc.poll() is None, f"worker {name} exited\n{self.log_tail()}"
            return self.worker_name(proc.pid) and " ready." in log.read_text(errors="replace")

        wait_for(ready, timeout, f"worker {name} to be ready", 0.1, self.log_tail)

    def start_reconciler(self) -> subprocess.Popen:
        return self.start("reconciler", ["-m", "trainyard.worker.reconciler"])

    def start_api(self, timeout: float = 60) -> str:
        """The API under gunicorn (one gevent process) on a free loopback port; its base URL once it answers."""
        port = free_port()
        self.start("api", ["-m", "trainyard.api.serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"])
        self.api_url = f"http://127.0.0.1:{port}/api/v1"

        def answers():
            assert self.processes["api"].poll() is None, f"the API exited\n{self.log_tail()}"
            with contextlib.suppress(requests.RequestException):  # gunicorn binds before its worker has loaded
                return requests.get(self.api_url + "/health", timeout=5).status_code in (200, 503)

        wait_for(answers, timeout, "the API to answer", 0.2, self.log_tail)
        return self.api_url

    def api(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return requests.request(method, self.api_url + path, headers=headers, timeout=kw.pop("timeout", 30), **kw)

    def stop_all(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            stop_process(proc, timeout=10)
        self.engine.dispose()

    # --- jobs, as the database says ------------------------------------------------------------
    def wait(self, job_id: str, until: Callable[[Job], bool] = lambda job: job.is_finished,
             timeout: float = 60, what: str = "") -> Job:
        return wait_for(lambda: (lambda job: job if until(job) else None)(self.job(job_id)), timeout,
                        f"job {job_id} {what or 'to finish'} (now {self.job(job_id).status}, "
                        f"epoch {self.job(job_id).epoch})", 0.05, self.log_tail)

    def epochs(self, job_id: str) -> list[int]:
        """The epochs of the job's stored history, in stored order."""
        with session_scope(self.factory) as session:
            return [row["epoch"] for row in history_rows(session=session, job_id=job_id)]

    def checkpoint_epoch(self, job_id: str) -> int:
        """The epoch of the job's stored checkpoint (0: none)."""
        with session_scope(self.factory) as session:
            artifact = session.get(Artifact, (job_id, "checkpoint"))
            return artifact.epoch if artifact is not None else 0

    def worker_name(self, pid: int) -> str | None:
        """The workers-table name of the worker whose main process is `pid` (None until it registered)."""
        with session_scope(self.factory) as session:
            for worker in session.query(Worker).filter(Worker.pid == pid):
                return worker.name
        return None

    def worker_pid(self, name: str) -> int:
        """The main process id of worker `name`, as it registered itself."""
        with session_scope(self.factory) as session:
            return session.get(Worker, name).pid

    def resumes(self, job_id: str) -> list[tuple[int, int]]:
        """`(attempt, resumed after epoch)` for each attempt of the job, from the workers' own log lines."""
        pattern = re.compile(rf"job {job_id}: attempt (\d+) on \S+?(?:, resuming after epoch (\d+))?$", re.M)
        found = []
        for log in self.logs.glob("*.log"):
            found += [(int(a), int(e or 0)) for a, e in pattern.findall(log.read_text(errors="replace"))]
        return sorted(found)

    def log_text(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
                         for p in sorted(self.logs.glob("*.log")))


@contextlib.contextmanager
def cluster(fresh_postgres, home: Path, *, db_proxy: bool = False, broker_url: str | None = None,
            **changes) -> Iterator[Cluster]:
    """A fresh database and Redis namespace; with `db_proxy`, the services reach the database through `c.proxy`."""
    with fresh_postgres(home, **changes) as observer:
        if broker_url is not None:
            observer = observer.replace(broker_url=broker_url)
        settings, proxy = observer, None
        if db_proxy:
            url = make_url(observer.database_url)
            proxy = TcpProxy((url.host, url.port or 5432))
            proxy.start()
            settings = observer.replace(database_url=url.set(host="127.0.0.1", port=proxy.port)
                                        .render_as_string(hide_password=False))
        c = Cluster(settings, observer)
        c.proxy = proxy
        try:
            yield c
        finally:
            c.stop_all()
            if proxy is not None:
                proxy.stop()


class RedisServer:
    """A private redis-server on a free loopback port (no persistence): a test may flush, stop and restart it."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/8"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            import pytest

            pytest.skip("redis-server is not installed (the broker-loss tests start their own)")
        with open(self.folder / "redis.log", "ab") as log:
            self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                          "--appendonly", "no", "--dir", str(self.folder)],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.ping, 10, f"redis-server on port {self.port}", 0.05)

    def ping(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False
        finally:
            client.close()

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        """SIGKILL: the server and everything it held are gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class TcpProxy:
    """A loopback TCP proxy to `target`; `cut()` closes every connection and refuses new ones until `restore()`;
    `hang()` keeps every connection open and accepts new ones but forwards nothing either way (a database that
    hangs instead of refusing: the kernel still acknowledges every byte) until `forward()`."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.port = target, free_port()
        self.lock = threading.Lock()
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.sockets: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.accepting: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.listener = listener
        self.accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True, name="proxy-accept")
        self.accepting.start()

    def _accept(self, listener: socket.socket) -> None:
        while self.listener is listener:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self.lock:
                if self.listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self.sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True, name="proxy-pump").start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.forwarding.wait()  # hung: hold what arrived, send nothing, close nothing
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def cut(self) -> None:
        """Close the listening socket (new connections are refused) and every open connection."""
        with self.lock:
            listener, self.listener = self.listener, None
            open_sockets, self.sockets = list(self.sockets), set()
        if listener is not None:
            listener.close()
        if self.accepting is not None:
            self.accepting.join()
        for s in open_sockets:
            self._close(s)

    def restore(self) -> None:
        self.start()

    def hang(self) -> None:
        """Stop forwarding without closing anything: open connections go silent, new ones connect and go silent."""
        self.forwarding.clear()

    def forward(self) -> None:
        """Forward again (what was held is delivered)."""
        self.forwarding.set()

    def stop(self) -> None:
        self.forwarding.set()  # let held pumps run into the closed sockets and end
        self.cut()
