"""Schemathesis against /api/v1/openapi.json with the security-relevant checks, every operation included: no 5xx,
only documented status codes and content types, bodies that match their schemas, invalid data refused, and
authentication enforced (schemathesis resends each accepted request without a token and with a forged one).

Bounded and deterministic: at most 25 examples per operation, derandomized (hypothesis' fixed seed). Path ids of
positive cases are alice's real succeeded job and dataset half the time, so the routes behind the 404 are fuzzed too.
tests/api/test_fuzz.py keeps the broader conformance run (positive data acceptance off there as here).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zlib
from pathlib import Path

import pytest
import schemathesis
from apitest import XOR_FIT, make_api
import apitest as fake_worker
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)

from store.settings import Settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection, ignored_auth]
# Built at collection time: parametrize() needs the schema then (as in tests/api/test_fuzz.py).
HOME = Path(tempfile.mkdtemp(prefix="trainyard-secfuzz-"))
API = make_api(Settings(home=HOME), rate_limit_burst=100_000)
JOB = API.alice.submit(XOR_FIT)["id"]
fake_worker.train(API, JOB, XOR_FIT)
DATASET = API.alice.post("/datasets", content_type="multipart/form-data", data={
    "name": "d", "format": "csv", "target": "y", "file": (io.BytesIO(b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"), "d.csv")},
).get_json()["id"]
SCHEMA = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", API.app)
# The token is sent by the test (below), not generated: a negative case must not "remove" a header we then add back.
SCHEMA.config.generation.update(with_security_parameters=False)


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    API.engine.dispose()
    shutil.rmtree(HOME, ignore_errors=True)


def _use_real_ids(case) -> None:
    """Half of the positive cases (chosen by a hash of the case, so deterministically) name alice's real ids.

    Not for DELETE: deleting the job or dataset would leave later cases nothing real to reach.
    """
    if not case.path_parameters or case.method.upper() == "DELETE" or case.meta is None:
        return
    if case.meta.generation.mode.is_negative or zlib.crc32(repr(case.path_parameters).encode()) % 2:
        return
    real = {"job_id": JOB, "dataset_id": DATASET}
    case.path_parameters = {k: real.get(k, v) for k, v in case.path_parameters.items()}


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_pass_the_security_checks(case):
    _use_real_ids(case)
    case.call_and_validate(checks=CHECKS, headers={"Authorization": f"Bearer {API.alice.token}"})
