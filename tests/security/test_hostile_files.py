"""Hostile files (DESIGN §7): uploads and stored model files that carry code, bombs or lying headers are refused
with a 4xx problem, and nothing in them ever runs (canary files stay absent, no unpickling is even attempted).

The attacks are those that breached other ML platforms: pickled artifacts (ClearML CVE-2024-24590, MLflow
CVE-2024-37052), Keras model files (CVE-2024-3660 Lambda bytecode, CVE-2025-1550 module paths in configs,
CVE-2025-9906 re-enabling unsafe deserialization).
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import select, update

from trainyard.store.db import session_scope
from trainyard.store.models import Artifact, Blob

from tests.support import ROOT, fakeworker as fake_worker, hostile
from tests.support.api import XOR_FIT, XOR_INPUTS, problem


def upload(caller, data: bytes, fmt: str, labels: bytes | None = None, filename: str = "data"):
    fields = {"name": "hostile", "format": fmt, "file": (io.BytesIO(data), filename)}
    if labels is not None:
        fields["labels"] = (io.BytesIO(labels), "labels")
    return caller.post("/datasets", data=fields, content_type="multipart/form-data")


def refused(r, *fragments: str) -> dict:
    """Assert a 422 problem about the file, its message holding each fragment; nothing was stored."""
    body = problem(r, 422)
    text = " ".join(e["msg"] for e in body.get("errors") or []) + body["detail"]
    for fragment in fragments:
        assert fragment in text, text
    return body


def payloads(canary):
    """(name, bytes, format, labels, message fragment) for every hostile dataset upload."""
    keras = hostile.keras_file(hostile.keras_configs(canary)["lambda_layer"])
    return [
        ("pickle as npz", hostile.pickle_payload(canary), "npz", None, "not an NPZ file"),
        ("pickle as csv", hostile.pickle_payload(canary), "csv", None, "not UTF-8"),
        ("pickle as idx", hostile.pickle_payload(canary), "idx", hostile.pickle_payload(canary), "not an IDX file"),
        ("pickle as its own format", hostile.pickle_payload(canary), "pickle", None, "not one of csv, npz, idx"),
        ("npz object array", hostile.npz_object_array(canary), "npz", None, "holds Python objects"),
        ("npz member is a pickle", hostile.npz_member_is_a_pickle(canary), "npz", None, "not a valid .npy array"),
        (".keras lambda as npz", keras, "npz", None, "needs arrays X and y"),
        (".keras lambda as csv", keras, "csv", None, "not UTF-8"),
        (".h5 lambda as npz", hostile.h5_model(canary), "npz", None, "not an NPZ file"),
        (".h5 lambda as idx", hostile.h5_model(canary), "idx", hostile.h5_model(canary), "not an IDX file"),
    ]


def test_uploads_that_carry_code_are_refused_and_never_run(api, tmp_path, no_code_runs):
    canary = tmp_path / "pwned"
    for name, data, fmt, labels, fragment in payloads(canary):
        refused(upload(api.alice, data, fmt, labels), fragment)
        assert not canary.exists(), name
    assert api.alice.get("/datasets").get_json()["items"] == []
    with session_scope(api.sessions) as s:
        assert s.scalar(select(Blob.sha256)) is None  # nothing refused was stored


def test_bombs_and_lying_headers_are_refused_without_inflating(limited, no_code_runs):
    import resource

    api = limited(max_upload_bytes=64 * 1024, max_decompressed_bytes=256 * 1024)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cases = [
        (hostile.npz_bomb(), "npz", None, "decompress to"),  # 2 MiB of zeros in ~2 KiB
        (hostile.npz_lying_sizes(), "npz", None, "X.npy"),  # entry sizes lie: its CRC/stream check fails
        (hostile.npz_header_lies(), "npz", None, "more than the"),  # .npy header declares 80 TB
        *[(data, "npz", None, "X.npy") for data in hostile.npz_broken_streams()],
        (hostile.gzip_bomb(), "csv", None, "decompresses to more than"),
        (hostile.gzip_bomb(b"\0" * 64, head=hostile.idx_header((1 << 17, 8, 8))), "idx",
         gzip.compress(hostile.idx(np.zeros(1 << 17))), "decompresses to more than"),
        # IDX headers that lie about their size: bigger than the bytes, 2^96 elements, 255 dimensions, none.
        (hostile.idx_header((60000, 28, 28)) + bytes(100), "idx", hostile.idx(np.zeros(4)), "header declares"),
        (hostile.idx_header((0xFFFFFFFF,) * 3) + bytes(16), "idx", hostile.idx(np.zeros(4)), "header declares"),
        (bytes([0, 0, 0x08, 255]) + bytes(64), "idx", hostile.idx(np.zeros(4)), "truncated IDX header"),
        (bytes([0, 0, 0x08, 0]), "idx", hostile.idx(np.zeros(4)), "0 dimensions"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 4]) + bytes(4), "idx", hostile.idx(np.zeros(4)), "unknown IDX data type"),
        (hostile.idx(np.zeros((4, 2, 2))), "idx", hostile.idx_header((1 << 30,)) + bytes(4), "header declares"),
    ]
    for data, fmt, labels, fragment in cases:
        assert len(data) + len(labels or b"") < 64 * 1024
        refused(upload(api.alice, data, fmt, labels), fragment)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024, f"peak memory grew by {grown_kib} KiB refusing bombs"
    assert api.alice.get("/datasets").get_json()["items"] == []


@pytest.fixture
def trained(api):
    """A succeeded job of alice's (trained in-process as a worker would), its model never loaded yet."""
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    return job["id"]


def hostile_models(canary):
    models = {f"keras {k}": hostile.keras_file(v) for k, v in hostile.keras_configs(canary).items()}
    models |= {f"skops {k}": v for k, v in hostile.skops_files(canary).items()}
    models |= {f"npz {k}": v for k, v in hostile.npz_models(canary).items()}
    models["h5 lambda"] = hostile.h5_model(canary)
    return models


def test_crafted_model_files_in_the_database_are_refused_by_the_predictor(api, trained, tmp_path, no_code_runs):
    canary = tmp_path / "pwned"
    for name, data in hostile_models(canary).items():
        hostile.replace_model_blob(api, trained, data)
        api.app.extensions["trainyard"].predictors.forget(trained)
        body = problem(api.alice.post(f"/jobs/{trained}/predict", json={"inputs": XOR_INPUTS}), 422)
        assert body["type"] == "urn:trainyard:problem:invalid-model", (name, body)
        assert not canary.exists(), name


def test_the_keras_loader_refuses_before_tensorflow_parses_anything(tmp_path, no_code_runs):
    from trainyard.core.backends import keras_modelfile, load_predictor
    from trainyard.core.errors import ModelFileError

    canary = tmp_path / "pwned"
    for name, config in hostile.keras_configs(canary).items():
        with pytest.raises(ModelFileError, match="class|activation"):
            keras_modelfile.read(hostile.keras_file(config))
        with pytest.raises(ModelFileError):
            load_predictor(hostile.keras_file(config))
        assert not canary.exists(), name
    # In a fresh interpreter: refusing a crafted .keras file never even imports TensorFlow.
    path = tmp_path / "evil.keras"
    path.write_bytes(hostile.keras_file(hostile.keras_configs(canary)["lambda_layer"]))
    probe = ("import sys; from trainyard.core.backends import load_predictor\n"
             f"try: load_predictor(open({str(path)!r}, 'rb').read())\n"
             "except Exception as e: print(type(e).__name__)\n"
             "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["ModelFileError", "False", "False"], out.stdout + out.stderr


def test_corrupt_blobs_are_never_served(api, trained):
    good = api.alice.get(f"/jobs/{trained}/model").data
    with session_scope(api.sessions) as s:
        sha = s.get(Artifact, (trained, "model")).blob_sha256
        s.execute(update(Blob).where(Blob.sha256 == sha).values(data=good[:-1] + bytes([good[-1] ^ 1])))
    api.app.extensions["trainyard"].predictors.forget(trained)
    for r in (api.alice.get(f"/jobs/{trained}/model"),
              api.alice.post(f"/jobs/{trained}/predict", json={"inputs": XOR_INPUTS})):
        body = problem(r, 409)
        assert body["type"] == "urn:trainyard:problem:corrupt-blob" and "sha256" in body["detail"]
        assert good[-64:] not in r.data
    assert api.alice.get(f"/jobs/{trained}").get_json()["status"] == "succeeded"  # the rest still answers


def test_a_corrupt_dataset_blob_fails_the_job_and_is_never_trained_on(api):
    from trainyard.worker.runner import run_job

    csv = b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"
    ds = api.alice.post("/datasets", content_type="multipart/form-data", data={
        "name": "d", "format": "csv", "target": "y", "file": (io.BytesIO(csv), "d.csv")}).get_json()
    job = api.alice.submit({**XOR_FIT, "dataset": {"id": ds["id"]}})
    with session_scope(api.sessions) as s:  # same length, one label flipped: only the sha256 can tell
        s.execute(update(Blob).where(Blob.sha256 == ds["sha256"]).values(data=csv.replace(b"1,1,0", b"1,1,1")))
    assert run_job(settings=api.settings, factory=api.sessions, job_id=job["id"], worker="w") == "failed"
    body = api.alice.get(f"/jobs/{job['id']}").get_json()
    assert body["error"]["code"] == "dataset_error" and "sha256" in body["error"]["message"], body["error"]
    assert api.alice.get(f"/jobs/{job['id']}/history").get_json()["epochs"] == []
    assert not list((api.settings.blob_cache_folder).glob("*"))  # the damaged bytes were not cached either
