"""Schemathesis against /api/v1/openapi.json with the security-relevant checks, every operation included: no 5xx,
only documented status codes and content types, bodies that match their schemas, invalid data refused, and
authentication enforced (schemathesis resends each accepted request without a token and with a forged one).

Bounded and deterministic: at most 25 examples per operation, derandomized (hypothesis' fixed seed), on SQLite +
the filesystem broker and on PostgreSQL + Redis. Path ids of positive cases are alice's real succeeded job and
dataset half the time, so the routes behind the 404 are fuzzed too. tests/api/test_fuzz.py keeps the broader
conformance run (positive data acceptance off there as here).
"""

from __future__ import annotations

import contextlib
import io
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)

from trainyard.api.openapi import openapi_document
from trainyard.store.settings import Settings

from tests.support import fakeworker as fake_worker
from tests.support.api import XOR_FIT, make_api

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection, ignored_auth]
# Generous request and authentication-failure budgets: the fuzzer is one client sending many (bad) requests.
BUDGETS = dict(rate_limit_burst=100_000, auth_failures_per_address=1_000_000)


class Target:
    """A WSGI app that passes each request to the app of the database under test (set by the `target` fixture),
    with alice's real job and dataset ids."""

    api = None
    ids: dict[str, str] = {}

    def __call__(self, environ, start_response):
        return self.api.app(environ, start_response)


# Built at collection time: parametrize() needs the schema then (as in tests/api/test_fuzz.py); every request
# goes to TARGET.
TARGET = Target()
SCHEMA = schemathesis.openapi.from_dict(openapi_document())
SCHEMA.app = TARGET
# The token is sent by the test (below), not generated: a negative case must not "remove" a header we then add back.
SCHEMA.config.generation.update(with_security_parameters=False)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def target(request, tmp_path_factory, fresh_postgres):
    """The app under test, once per database, with a succeeded job and a dataset of alice's."""
    home = tmp_path_factory.mktemp("secfuzz")
    with contextlib.ExitStack() as stack:
        db = Settings(home=home) if request.param == "sqlite" else stack.enter_context(fresh_postgres(home))
        api = TARGET.api = make_api(db, **BUDGETS)
        stack.callback(api.engine.dispose)
        job = api.alice.submit(XOR_FIT)["id"]
        fake_worker.train(api, job, XOR_FIT)
        dataset = api.alice.post("/datasets", content_type="multipart/form-data", data={
            "name": "d", "format": "csv", "target": "y",
            "file": (io.BytesIO(b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"), "d.csv")}).get_json()["id"]
        TARGET.ids = {"job_id": job, "dataset_id": dataset}
        yield api


def _use_real_ids(case) -> None:
    """Half of the positive cases (chosen by a hash of the case, so deterministically) name alice's real ids.

    Not for DELETE: deleting the job or dataset would leave later cases nothing real to reach.
    """
    if not case.path_parameters or case.method.upper() == "DELETE" or case.meta is None:
        return
    if case.meta.generation.mode.is_negative or zlib.crc32(repr(case.path_parameters).encode()) % 2:
        return
    case.path_parameters = {k: TARGET.ids.get(k, v) for k, v in case.path_parameters.items()}


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_pass_the_security_checks(case, target):
    _use_real_ids(case)
    case.call_and_validate(checks=CHECKS, headers={"Authorization": f"Bearer {target.alice.token}"})
