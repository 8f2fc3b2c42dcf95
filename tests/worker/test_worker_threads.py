"""A worker fixes its pool processes' thread pools from its own settings before any job runs: TensorFlow's, so no
job's Keras thread options reach its pool processes (core/backends/keras_backend.py applies a job's only where these
are unset), and BLAS's, so its pool processes training at once share the CPUs instead of each taking them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from trainyard.store.settings import Settings
from trainyard.worker.main import _thread_settings


def test_a_worker_exports_both_pool_sizes_even_when_they_are_tensorflows_default(monkeypatch, tmp_path):
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "99")  # restored (unset) after the test
    blas = len(os.sched_getaffinity(0))  # one pool process: every CPU, as the library's own default
    assert _thread_settings(Settings(home=tmp_path, tf_intra_op_threads=0, tf_inter_op_threads=3), 1) == blas
    assert (os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"]) == ("0", "3")


FORKED_POOL_PROCESS = """
import json, os, sys
from trainyard.store.settings import Settings
from trainyard.worker.main import _thread_settings
threads = _thread_settings(Settings(home=sys.argv[1], blas_threads=int(sys.argv[2])), int(sys.argv[3]))
read, write = os.pipe()
if os.fork() == 0:  # as Celery's prefork pool starts its processes
    from threadpoolctl import threadpool_info
    os.write(write, json.dumps([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]).encode())
    os._exit(0)
os.close(write)
print(json.dumps({"threads": threads, "child": json.loads(os.read(read, 1000))}))
"""


@pytest.mark.parametrize("setting, concurrency", [(0, 2), (0, 1), (3, 2)])
def test_each_pool_process_gets_its_share_of_the_cpus_for_blas(tmp_path, setting, concurrency):
    """Issue 11: with the library's default every pool process used every CPU, so two workers on two cores ran four
    BLAS threads on two and spun: a one-epoch digits job cost its pool process 31 ms of CPU instead of 9."""
    cpus = len(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", FORKED_POOL_PROCESS, str(tmp_path), str(setting), str(concurrency)],
                         capture_output=True, text=True, check=True, timeout=60)
    expected = setting or max(1, cpus // concurrency)
    assert json.loads(out.stdout) == {"threads": expected, "child": [expected]}, out.stderr
