"""Schemathesis, statefully: it follows the OpenAPI links from a submitted job to the job's own routes.

Issue 13 §2: schemathesis never had a job to work on — every generated submit was a 422 (the cross-field rules
of a spec are more than a JSON schema can say) and the document had no links, so 0 of 38 inferred links were
covered and the job routes only ever saw 404s. Now the document links a created resource to every operation on
it, and each scenario submits the document's own request example (as a client that read the docs would): the
links then carry the new job's id to reading, history, predict, cancel and delete, whose answers are checked
against the document. In-process (no worker: jobs stay queued, so streaming events are left out).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from trainyard.api.openapi import openapi_document
from trainyard.store.settings import Settings

from tests.support.api import make_api

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BUDGETS = dict(rate_limit_burst=100_000, auth_failures_per_address=1_000_000)
JOBS = "/api/v1/jobs"


class Target:
    """The WSGI app under test (set by the fixture) and what the scenarios reached."""

    api = None
    calls: list[tuple[str, str, int, str | None]] = []  # method, path template, status, the job id it named

    def __call__(self, environ, start_response):
        return self.api.app(environ, start_response)


TARGET = Target()


@pytest.fixture
def target(tmp_path):
    """On SQLite (tests/api/test_fuzz.py and tests/security/test_fuzz_security.py fuzz PostgreSQL too)."""
    api = TARGET.api = make_api(Settings(home=tmp_path / "home"), **BUDGETS)
    TARGET.calls = []
    yield api
    api.engine.dispose()


def test_stateful_scenarios_reach_a_created_job_through_the_links(target):
    document = openapi_document()
    schema = schemathesis.openapi.from_dict(document)
    schema.app = TARGET
    schema.config.phases.stateful.inference.algorithms = []  # the document's own links only, nothing inferred
    example = document["paths"][JOBS]["post"]["requestBody"]["content"]["application/json"]["example"]
    token = target.alice.token

    class Workflow(schema.include(path_regex="^/api/v1/jobs").exclude(path_regex="events$").as_state_machine()):
        def before_call(self, case):
            if case.method == "POST" and case.path == JOBS:
                case.body = {**example, "training": {**example["training"], "epochs": 5}}
                case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "idempotency-key"}

        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def after_call(self, response, case):
            TARGET.calls.append((case.method, case.path, response.status_code,
                                 (case.path_parameters or {}).get("job_id")))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, headers={"Authorization": f"Bearer {token}"})

    Workflow.run(settings=settings(max_examples=15, stateful_step_count=6, deadline=None, derandomize=True,
                                   database=None, suppress_health_check=list(HealthCheck)))
    created = {job["id"] for job in target.alice.get("/jobs?limit=500").get_json()["items"]}
    submitted = [c for c in TARGET.calls if c[:3] == ("POST", JOBS, 201)]
    assert submitted, "no scenario created a job"
    # Operations on a job the scenario created (its id came through a link), answered by the route, not a 404.
    reached = {(method, path) for method, path, status, job in TARGET.calls
               if job is not None and (job in created or status == 204) and status != 404}
    # Which of them a scenario picks depends on the routes there are (hypothesis explores, derandomized): reading
    # the job, and at least four of its other routes.
    assert ("GET", JOBS + "/{job_id}") in reached and len(reached) >= 5, sorted(reached)
