"""`trainyard worker`: a Celery worker on the given queues that reports itself in the workers table."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import socket
import sys
import threading

from trainyard.store.db import make_engine, make_sessionmaker, session_scope
from trainyard.store.settings import Settings, load_settings
from trainyard.store.workers import register_worker, touch_worker, unregister_worker
from trainyard.worker.app import DEVICES, create_celery

log = logging.getLogger(__name__)


class Presence:
    """A thread in the worker's main process that keeps its row in the workers table fresh."""

    def __init__(self, settings: Settings, *, name: str, queues: list[str], concurrency: int):
        self.settings, self.name, self.queues, self.concurrency = settings, name, queues, concurrency
        self.engine = make_engine(settings)
        self.factory = make_sessionmaker(self.engine)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="presence", daemon=True)

    def start(self) -> None:
        with session_scope(self.factory) as session:
            register_worker(session=session, name=self.name, queues=self.queues,
                            device="gpu" if "gpu" in self.queues else "cpu", concurrency=self.concurrency,
                            hostname=socket.gethostname(), pid=os.getpid())
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.wait(self.settings.worker_live_seconds / 3):
            try:
                with session_scope(self.factory) as session:
                    touch_worker(session=session, name=self.name)
            except Exception:
                log.exception("worker %s: could not report in; retrying", self.name)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        try:
            with session_scope(self.factory) as session:
                unregister_worker(session=session, name=self.name)
        finally:
            self.engine.dispose()


def _thread_settings(settings: Settings, concurrency: int) -> int:
    """Thread counts for every pool process, set before they fork; returns the BLAS threads.

    TensorFlow reads its thread counts from the environment when it starts; 0 is its default.
    Both are always set, so a job's `intra_op_threads` / `inter_op_threads` never size a pool
    process's TensorFlow (core/backends/keras_backend.py) and no job inherits another's.

    BLAS (numpy's OpenBLAS; scikit-learn's products go through it): the pool processes train at
    once, so each gets `blas_threads`, by default its share of the CPUs this process may use. With
    the library's default every process used all of them, and two workers on two cores spun four
    threads on two: a one-epoch digits job cost its pool process 31 ms of CPU instead of 9 (issue 11).
    """
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(settings.tf_intra_op_threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(settings.tf_inter_op_threads)
    threads = settings.blas_threads or max(1, len(os.sched_getaffinity(0)) // concurrency)
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)  # a BLAS loaded later
    import numpy  # noqa: F401 (loaded here, so the limit below is in the memory every pool process inherits)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    return threads


def run_worker(*, queues: list[str], concurrency: int) -> int:
    """Run a worker on `queues` (`cpu`, `gpu`) with `concurrency` pool processes until stopped; the exit status.

    Pool children are forked before any job runs and import the backends (TensorFlow
    included) only when a job needs them, so nothing is forked after TensorFlow loaded.
    """
    unknown = sorted(set(queues) - set(DEVICES))
    if not queues or unknown or concurrency < 1:
        print(f"worker: queues must be among {', '.join(DEVICES)} and concurrency >= 1", file=sys.stderr)
        return 2
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("worker: %d BLAS thread(s) in each of %d pool process(es)", _thread_settings(settings, concurrency),
             concurrency)
    # Opaque (users see it in /workers and their jobs); the host and pid go in their own columns, for operators.
    # Celery would append "@<hostname>" to a name without "@".
    name = f"{'+'.join(queues)}-{secrets.token_hex(6)}@trainyard"
    celery = create_celery(settings)
    presence = Presence(settings, name=name, queues=list(queues), concurrency=concurrency)
    presence.start()
    try:
        celery.worker_main(["worker", "--queues", ",".join(queues), "--concurrency", str(concurrency),
                            "--hostname", name, "--pool", "prefork", "--loglevel", settings.log_level,
                            "--without-mingle", "--without-gossip",
                            # Flower counts a worker online from its heartbeat events (celery_monitoring)
                            *([] if settings.celery_monitoring else ["--without-heartbeat"])])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        presence.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m trainyard.worker.main --queues cpu --concurrency 1` (what `trainyard worker` runs)."""
    parser = argparse.ArgumentParser(prog="trainyard worker")
    parser.add_argument("--queues", default="cpu", help="comma-separated: cpu, gpu")
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)
    return run_worker(queues=[q for q in args.queues.split(",") if q], concurrency=args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
