"""The OpenAPI 3.1 document, generated from the pydantic models in api.schemas and core.spec's JSON schema."""

from __future__ import annotations

import json
from functools import lru_cache
from http import HTTPStatus

from pydantic.json_schema import models_json_schema

from api import pins, schemas
from api.params import INT_MAX
from core.spec import BACKENDS
from core.spec import json_schema as spec_json_schema
from store.jobs import HISTORY_PAGE, MAX_HISTORY_PAGE

PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"
MODELS = [schemas.Job, schemas.JobList, schemas.History, schemas.ConfusionMatrix, schemas.PredictRequest,
          schemas.PredictResponse,
          schemas.Dataset, schemas.DatasetSummary, schemas.DatasetList, schemas.WorkerList, schemas.Health, schemas.Catalog,
          schemas.Problem, schemas.DatasetUpload]

JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
DATASET_ID = {"name": "dataset_id", "in": "path", "required": True, "schema": {"type": "string"}}
PUBLIC: list = []  # `security: []` — no token needed
# OpenAPI 3.1 reads an event stream's `schema` as the schema of each event (3.2 calls it `itemSchema`).
SSE_EVENT = {"type": "object", "description": "One event: `progress` (data: the epoch's history row with `status`, "
                                              "`epoch`, `epochs`; id: the epoch) or `status` (data: the job)",
             "properties": {"event": {"type": "string", "enum": ["progress", "status"]}, "id": {"type": "string"},
                            "data": {"type": "string", "contentMediaType": "application/json",
                                     "contentSchema": {"type": "object"}},
                            "retry": {"type": "integer", "minimum": 0}}}

# path → method → (summary, request body, {status: response}, extra operation fields).
# A response is a schema name, None (no body) or a (media type, schema) pair.
ROUTES: dict[str, dict[str, tuple]] = {
    "/jobs": {
        "post": ("Submit a job spec", ("application/json", "JobSpec"),
                 {201: "Job", 200: "Job", 401: "Problem", 409: "Problem", 413: "Problem", 422: "Problem",
                  429: "Problem"},
                 {"parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                  "schema": {"type": "string", "maxLength": 200},
                                  "description": "The same key from the same user returns the job it first created "
                                                 "(200 instead of 201)."}]}),
        "get": ("Summaries of the caller's jobs, newest first", None,
                {200: "JobList", 401: "Problem", 422: "Problem"},
                {"parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {"name": "backend", "in": "query", "schema": {"type": "string"}},
                    {"name": "name", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500,
                                                                "default": 50}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}}]}),
    },
    "/jobs/{job_id}": {
        "get": ("One job", None, {200: "Job", 401: "Problem", 404: "Problem"}, {"parameters": [JOB_ID]}),
        "delete": ("Delete a finished job and its artifacts", None, {204: None, 401: "Problem", 404: "Problem",
                                                                     409: "Problem"}, {"parameters": [JOB_ID]}),
    },
    "/jobs/{job_id}/history": {
        "get": ("One page of the per-epoch history: the epochs after `since`, at most `limit`; follow `next_since` "
                "while `has_more`", None,
                {200: "History", 401: "Problem", 404: "Problem", 422: "Problem"},
                {"parameters": [JOB_ID, {"name": "since", "in": "query",
                                         "schema": {"type": "integer", "minimum": 0, "default": 0}},
                                {"name": "limit", "in": "query",
                                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY_PAGE,
                                            "default": HISTORY_PAGE}}]}),
    },
    "/jobs/{job_id}/confusion-matrix": {
        "get": ("A succeeded classification job's confusion matrix on one split", None,
                {200: "ConfusionMatrix", 401: "Problem", 404: "Problem", 409: "Problem", 422: "Problem"},
                {"parameters": [JOB_ID, {"name": "split", "in": "query",
                                         "schema": {"type": "string", "enum": ["train", "val", "test"],
                                                    "default": "test"}}]}),
    },
    "/jobs/{job_id}/events": {
        "get": ("Server-Sent Events: `progress` per update, then one `status` event with the finished job", None,
                {200: ("text/event-stream", SSE_EVENT), 401: "Problem", 404: "Problem", 422: "Problem"},
                {"parameters": [JOB_ID, {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                                {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"},
                                 "description": "resume after this epoch (EventSource sends it on reconnect)"}]}),
    },
    "/jobs/{job_id}/cancel": {
        "post": ("Request cancellation", None, {202: "Job", 401: "Problem", 404: "Problem", 409: "Problem"},
                 {"parameters": [JOB_ID]}),
    },
    "/jobs/{job_id}/model": {
        "get": ("The trained model file: the backend's own (.npz, .skops or .keras, scaling inside), or with "
                "`format=onnx` one ONNX graph (raw double rows `inputs` in; `predictions` and, for classifiers, "
                "`probabilities` out)", None,
                {200: ("application/octet-stream", {"type": "string", "format": "binary"}), 401: "Problem",
                 404: "Problem", 409: "Problem", 422: "Problem"},
                {"parameters": [JOB_ID, {"name": "format", "in": "query",
                                         "schema": {"type": "string", "enum": ["native", "onnx"],
                                                    "default": "native"},
                                         "description": "`native`: the backend's own file; `onnx`: one ONNX graph"}]}),
    },
    "/jobs/{job_id}/predict": {
        "post": ("Predict with a succeeded job's model", ("application/json", "PredictRequest"),
                 {200: "PredictResponse", 401: "Problem", 404: "Problem", 409: "Problem", 422: "Problem"},
                 {"parameters": [JOB_ID]}),
    },
    "/datasets": {
        "post": ("Upload a dataset (validated now)", ("multipart/form-data", "DatasetUpload"),
                 {201: "Dataset", 401: "Problem", 413: "Problem", 415: "Problem", 422: "Problem"}, {}),
        "get": ("The caller's datasets", None, {200: "DatasetList", 401: "Problem"}, {}),
    },
    "/datasets/{dataset_id}": {
        "get": ("One dataset", None, {200: "Dataset", 401: "Problem", 404: "Problem"}, {"parameters": [DATASET_ID]}),
        "delete": ("Delete a dataset no queued or running job uses", None,
                   {204: None, 401: "Problem", 404: "Problem", 409: "Problem"}, {"parameters": [DATASET_ID]}),
    },
    "/catalog": {"get": ("What a spec may name", None, {200: "Catalog", 401: "Problem"}, {})},
    "/workers": {"get": ("Live workers", None, {200: "WorkerList", 401: "Problem"}, {})},
    "/health": {"get": ("Liveness with database and broker checks", None, {200: "Health", 503: "Problem"},
                        {"security": PUBLIC})},
    "/openapi.json": {"get": ("This document", None, {200: ("application/json", {"type": "object"})},
                              {"security": PUBLIC})},
    "/metrics": {"get": ("Prometheus metrics", None, {200: ("text/plain", {"type": "string"})},
                         {"security": PUBLIC})},
    "/docs": {"get": ("A page that renders this document (works offline)", None,
                      {200: ("text/html", {"type": "string"})}, {"security": PUBLIC})},
}


HEADERS = {  # response headers by status
    201: {"Location": {"description": "the new resource", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}},
}


pins.document(ROUTES)  # POST/DELETE /jobs/{job_id}/pin, and 410 where retention purged what a route serves


def _content(media: str, schema: str | dict) -> dict:
    ref = {"$ref": REF.format(model=schema)} if isinstance(schema, str) else schema
    if media == "application/json" and isinstance(schema, str) and schema == "Problem":
        media = "application/problem+json"
    return {media: {"schema": ref}}


def _response(status: int, spec) -> dict:
    if spec is None:
        return {"description": HTTPStatus(status).phrase}
    media, schema = ("application/json", spec) if isinstance(spec, str) else spec
    return {"description": HTTPStatus(status).phrase, "content": _content(media, schema)}


def _components() -> dict:
    _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
    components = dict(defs["$defs"])
    spec = json.loads(json.dumps(spec_json_schema()).replace('"#/$defs/', '"#/components/schemas/'))
    for name, schema in spec.pop("$defs", {}).items():
        if name in components:
            raise RuntimeError(f"schema name clash in the OpenAPI document: {name}")
        components[name] = schema
    components["JobSpec"] = spec
    return components


def _operation_id(method: str, path: str) -> str:
    words = [w.strip("{}").replace(".", "_") for w in path.split("/") if w]
    return "_".join([method, *words])


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    """The whole document (built once per process; it depends on code only)."""
    paths: dict = {}
    for path, methods in ROUTES.items():
        for method, (summary, body, responses, extra) in methods.items():
            if extra.get("security") != PUBLIC:  # any route behind a token can answer 401 and 429
                responses = {**responses, 401: "Problem", 429: "Problem"}
            op = {"summary": summary, "operationId": _operation_id(method, path),
                  "responses": {str(code): _response(code, spec) for code, spec in sorted(responses.items())},
                  **extra}
            if body is not None:
                op["requestBody"] = {"required": True, "content": _content(*body)}
            paths.setdefault(PREFIX + path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "trainyard", "version": "1",
                 "description": "Train neural networks from a JSON job spec. Errors are RFC 9457 problem+json."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": _components(),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
