"""Keras thread options never carry from one job into the next (finding 8: a job's 300/300 left 617 threads in a pool
process, and the next user's job ran with them). TensorFlow fixes its pools once per process, so each case runs in
a fresh interpreter: a worker's (its environment names the pools) and `trainyard run`'s (one job, its own values)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts threads in /proc")]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, os
import tensorflow as tf
from trainyard.core.job import train_job
from trainyard.core.validate import validate_spec

def job(**options):
    train_job(validate_spec({"backend": "keras", "backend_options": options, "dataset": {"builtin": "xor"},
                             "model": {"layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
                             "training": {"epochs": 1, "batch_size": 4, "seed": 1}}))
    return {"threads": len(os.listdir("/proc/self/task")),
            "intra": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter": tf.config.threading.get_inter_op_parallelism_threads()}

print(json.dumps([job(intra_op_threads=64, inter_op_threads=64), job()]))
"""


def run_jobs(**env: str) -> list[dict]:
    """Two Keras jobs in one fresh process (64/64 threads, then the defaults); what each left behind."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env={**clean, "PYTHONPATH": str(ROOT), **env},
                         capture_output=True, text=True, timeout=240, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_worker_process_keeps_its_own_pools_whatever_a_job_asks():
    """A worker exports its tf_*_op_threads settings (here 2/2) before any job: no job's values reach TensorFlow."""
    first, second = run_jobs(TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="2")
    assert (first["intra"], first["inter"]) == (0, 0)  # never set from the job: TensorFlow reads the environment
    assert first["threads"] < 64 and second["threads"] <= first["threads"] + 2, (first, second)


def test_a_process_without_worker_pools_applies_the_jobs_own():
    """`trainyard run` trains one job per process: its options are the process's."""
    first, _ = run_jobs()
    assert (first["intra"], first["inter"]) == (64, 64)
