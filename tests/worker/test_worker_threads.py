"""A worker fixes TensorFlow's thread pools from its own settings before any job runs, so no job's Keras thread
options reach its pool processes (core/backends/keras_backend.py applies a job's only where these are unset)."""

from __future__ import annotations

import os

from trainyard.store.settings import Settings
from trainyard.worker.main import _thread_settings


def test_a_worker_exports_both_pool_sizes_even_when_they_are_tensorflows_default(monkeypatch):
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        monkeypatch.setenv(name, "99")  # restored (unset) after the test
    _thread_settings(Settings(tf_intra_op_threads=0, tf_inter_op_threads=3))
    assert (os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"]) == ("0", "3")
