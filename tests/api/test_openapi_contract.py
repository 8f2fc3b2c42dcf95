"""What tools read in /api/v1/openapi.json (issue 13 §2): one JobSpec for submit and response, enums derived from
the code's registries, date-time formats, declared headers, an event stream that is text, described spec fields,
nothing declared that the API always refuses. tests/contract runs the tools themselves on it."""

from __future__ import annotations

from trainyard.api.openapi import openapi_document
from trainyard.api.params import INT_MAX
from trainyard.api.schemas import JobStatus
from trainyard.core.datasets.catalog import BUILTINS
from trainyard.core.spec import ACTIVATIONS, ALIASES, BACKENDS, INITIALIZERS, LOSSES, METRICS, OPTIMIZERS

SPEC_MODELS = ("JobSpec", "DatasetSpec", "ModelSpec", "Dense", "Dropout", "BatchNorm", "TrainingSpec",
               "EarlyStopping", "Regularizer", "Activation", "Initializer", "Optimizer")


def names(table) -> list[str]:
    """A vocabulary's canonical names, then the aliases of them."""
    return list(table) + sorted(a for a, n in ALIASES.items() if n in table and a not in table)


def test_a_job_has_the_spec_schema_by_reference_and_no_model_is_defined_inline():
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    assert schemas["Job"]["properties"]["spec"] == {"$ref": "#/components/schemas/JobSpec"}
    assert "title" not in schemas["Job"]["properties"]["spec"]  # an inline "Spec" became a second JobSpec
    body = doc["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/JobSpec"} and body["example"]["dataset"]


def test_enums_come_from_the_registries():
    schemas = openapi_document()["components"]["schemas"]
    activation, initializer, optimizer = (schemas[m]["anyOf"] for m in ("Activation", "Initializer", "Optimizer"))
    assert activation[0]["enum"] == names(ACTIVATIONS) == activation[1]["properties"]["name"]["enum"]
    assert initializer[0]["enum"] == names(INITIALIZERS) and optimizer[0]["enum"] == names(OPTIMIZERS)
    training = schemas["TrainingSpec"]["properties"]
    assert training["loss"]["anyOf"][0]["enum"] == names(LOSSES)
    assert training["metrics"]["anyOf"][0]["items"]["enum"] == names(METRICS)
    assert schemas["DatasetSpec"]["properties"]["builtin"]["anyOf"][0]["enum"] == list(BUILTINS)
    assert schemas["JobSpec"]["properties"]["backend"]["enum"] == list(BACKENDS)
    assert schemas["Job"]["properties"]["status"]["enum"] == list(JobStatus.__args__)
    assert schemas["JobSummary"]["properties"]["backend"]["enum"] == list(BACKENDS)
    params = {p["name"]: p for p in openapi_document()["paths"]["/api/v1/jobs"]["get"]["parameters"]}
    assert params["status"]["schema"]["items"]["enum"] == list(JobStatus.__args__)
    assert params["backend"]["schema"]["enum"] == list(BACKENDS)


def test_times_are_date_time_and_integers_are_bounded_by_their_column():
    doc = openapi_document()
    job = doc["components"]["schemas"]["Job"]["properties"]
    assert job["created_at"] == {"type": "string", "format": "date-time", "title": "Created At"}
    assert {"type": "string", "format": "date-time"} in job["finished_at"]["anyOf"]
    for path in ("/api/v1/jobs/{job_id}/history", "/api/v1/jobs/{job_id}/events"):
        since = next(p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == "since")
        assert since["schema"]["maximum"] == INT_MAX


def test_location_and_retry_after_are_declared():
    paths = openapi_document()["paths"]
    for path, method in (("/api/v1/jobs", "post"), ("/api/v1/datasets", "post")):
        assert "Location" in paths[path][method]["responses"]["201"]["headers"]
    assert "Location" in paths["/api/v1/jobs"]["post"]["responses"]["200"]["headers"]  # an Idempotency-Key replay
    for item in paths.values():
        for op in item.values():
            for code in ("429", "503"):
                if code in op["responses"] and op.get("security") != []:
                    assert "Retry-After" in op["responses"][code]["headers"], op["operationId"]


def test_the_event_stream_is_declared_as_text():
    content = openapi_document()["paths"]["/api/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    assert content["text/event-stream"]["schema"]["anyOf"][0] == {"type": "string"}


def test_every_spec_field_is_described_and_path_is_not_declared():
    schemas = openapi_document()["components"]["schemas"]
    missing = []
    for model in SPEC_MODELS:
        schema = schemas[model]
        objects = [s for s in schema.get("anyOf", [schema]) if "properties" in s]
        for obj in objects:
            for name, prop in obj["properties"].items():
                target = prop.get("$ref", "").rsplit("/", 1)[-1]
                if name not in ("type", "name") and "description" not in prop and \
                        "description" not in schemas.get(target, {}):
                    missing.append(f"{model}.{name}")
    assert missing == []
    assert "path" not in schemas["DatasetSpec"]["properties"]  # the API refuses it (local runs only)


def test_operations_have_tags_and_created_resources_link_to_their_routes():
    paths = openapi_document()["paths"]
    assert all(op["tags"] for item in paths.values() for op in item.values())
    links = paths["/api/v1/jobs"]["post"]["responses"]["201"]["links"]
    for op in ("get_jobs_job_id", "get_jobs_job_id_history", "post_jobs_job_id_cancel", "post_jobs_job_id_predict",
               "delete_jobs_job_id"):
        assert links[op] == {"operationId": op, "parameters": {"job_id": "$response.body#/id"}}
    assert "get_datasets_dataset_id" in paths["/api/v1/datasets"]["post"]["responses"]["201"]["links"]
