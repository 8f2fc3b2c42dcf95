"""The OpenAPI 3.1 document, generated from the pydantic models in api.schemas and core.spec's JSON schema.

ROUTES declares each operation once; what follows from its shape is added to every operation alike, so a new
route is declared as precisely as the old ones: a tag (the path's first word), `Location` on a 201,
`Retry-After` on a 429 or 503, 503 on every route that reads the database, and OpenAPI links from an
operation that returns a resource (a body with `id`) to every operation on that resource's path.
"""

from __future__ import annotations

import json
from functools import lru_cache
from http import HTTPStatus

from pydantic.json_schema import models_json_schema

from trainyard.api import boundary, pins, schemas, scopes, sweep_docs
from trainyard.api.params import INT_MAX
from trainyard.api.urls import PREFIX
from trainyard.core.spec import BACKENDS
from trainyard.core.spec import json_schema as spec_json_schema
from trainyard.store.jobs import HISTORY_PAGE, MAX_HISTORY_PAGE

REF = "#/components/schemas/{model}"
MODELS = [schemas.Job, schemas.JobList, schemas.History, schemas.ConfusionMatrix, schemas.PredictRequest,
          schemas.PredictResponse,
          schemas.Dataset, schemas.DatasetSummary, schemas.DatasetList, schemas.WorkerList, schemas.Health, schemas.Catalog,
          schemas.Problem, schemas.DatasetUpload]

JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
DATASET_ID = {"name": "dataset_id", "in": "path", "required": True, "schema": {"type": "string"}}
PUBLIC: list = []  # `security: []` — no token needed
# An integer query parameter is compared with an INTEGER column (api.params.int_param refuses larger ones).
SINCE = {"type": "integer", "minimum": 0, "maximum": INT_MAX}
# The stream is text that a client reads line by line (as EventSource does), and OpenAPI 3.1 tools that parse
# event streams (schemathesis) read the schema as that of each event: so either. A generated client gets the text.
SSE_EVENT = {"type": "object", "description": "One event, as an event-stream parser gives it",
             "properties": {"event": {"type": "string", "enum": ["progress", "status"]}, "id": {"type": "string"},
                            "data": {"type": "string", "contentMediaType": "application/json",
                                     "contentSchema": {"type": "object"}},
                            "retry": {"type": "integer", "minimum": 0}}}
SSE_STREAM = {"anyOf": [{"type": "string"}, SSE_EVENT], "description": (
    "text/event-stream: `event: progress` per epoch (`id:` the epoch; `data:` the epoch's history row with "
    "`status`, `epoch`, `epochs`), then one `event: status` whose `data:` is the finished job (schema Job). "
    "Reconnect with `Last-Event-ID` to resume.")}
STATUS_FILTER = {"name": "status", "in": "query", "style": "form", "explode": True,
                 "schema": {"type": "array", "items": {"type": "string", "enum": list(schemas.JobStatus.__args__)}},
                 "description": "only jobs with one of these statuses (repeat it, or separate them with commas)"}
# A request example per body schema: what the docs page shows and what a fuzzer starts from.
EXAMPLE_SPEC = {"name": "xor-relu", "backend": "numpy", "device": "cpu", "dataset": {"builtin": "xor"},
                "model": {"layers": [{"type": "dense", "units": 2, "activation": "relu",
                                      "kernel_initializer": {"name": "normal", "mean": 0.75, "stddev": 0.01}},
                                     {"type": "dense", "units": 1, "activation": "sigmoid"}]},
                "training": {"loss": "mean_squared_error", "optimizer": {"name": "adam", "learning_rate": 0.01},
                             "batch_size": 4, "epochs": 50, "seed": 20, "metrics": ["accuracy"]}}
EXAMPLES = {"JobSpec": EXAMPLE_SPEC, "PredictRequest": {"inputs": [[0, 0], [0, 1], [1, 0], [1, 1]]},
            "DatasetUpload": {"name": "cheese", "format": "csv", "target": "label",
                              "file": "a,b,label\n0.1,2.0,0\n0.4,1.5,1\n"}}

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
                    STATUS_FILTER,
                    {"name": "backend", "in": "query", "schema": {"type": "string", "enum": list(BACKENDS)}},
                    {"name": "name", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500,
                                                                "default": 50}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string", "minLength": 1},
                     "description": "`next_cursor` of the previous page"}]}),
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
                {"parameters": [JOB_ID, {"name": "since", "in": "query", "schema": {**SINCE, "default": 0}},
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
                {200: ("text/event-stream", SSE_STREAM), 401: "Problem", 404: "Problem", 422: "Problem"},
                {"parameters": [JOB_ID, {"name": "since", "in": "query", "schema": SINCE},
                                {"name": "Last-Event-ID", "in": "header",
                                 "schema": {"type": "string", "pattern": "^[0-9]{1,10}$"},
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
    "/metrics": {"get": ("Prometheus metrics: text format 0.0.4, or OpenMetrics when the Accept header asks for it "
                         "(as Prometheus does); a bearer token only when the server sets metrics_token", None,
                         {200: ("text/plain", {"type": "string"}), 401: "Problem"}, {"security": PUBLIC})},
    "/docs": {"get": ("A page that renders this document (works offline)", None,
                      {200: ("text/html", {"type": "string"})}, {"security": PUBLIC})},
    "/": {"get": ("The API's root: a redirect to its home page, the docs (/api/v1 redirects here first)", None,
                  {302: None}, {"security": PUBLIC})},
}


HEADERS = {  # response headers by status
    201: {"Location": {"description": "the new resource", "schema": {"type": "string"}}},
    302: {"Location": {"description": "where to go instead", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}},
}


pins.document(ROUTES)  # POST/DELETE /jobs/{job_id}/pin, and 410 where retention purged what a route serves
sweep_docs.document(ROUTES, MODELS, EXAMPLES)  # /sweeps (issue 9)
boundary.document(ROUTES, MODELS)  # /jobs/{job_id}/decision-boundary (issue 10: the dashboard)


def _content(media: str, schema: str | dict) -> dict:
    ref = {"$ref": REF.format(model=schema)} if isinstance(schema, str) else schema
    if media == "application/json" and isinstance(schema, str) and schema == "Problem":
        media = "application/problem+json"
    content = {"schema": ref}
    if isinstance(schema, str) and schema in EXAMPLES:
        content["example"] = EXAMPLES[schema]
    return {media: content}


def _response(status: int, spec) -> dict:
    response = {"description": HTTPStatus(status).phrase}
    if status in HEADERS:
        response["headers"] = dict(HEADERS[status])
    if spec is not None:
        media, schema = ("application/json", spec) if isinstance(spec, str) else spec
        response["content"] = _content(media, schema)
    return response


def _api_spec_schemas(spec: dict) -> dict:
    """trainyard.core.spec's schema as the API takes it: `dataset.path` is for local runs only (the API refuses it), so it
    is not declared. (That a dataset names exactly one of `builtin` and `id` is said, not declared: a `oneOf`
    beside the properties makes generated clients drop the properties.)"""
    defs = spec.pop("$defs", {})
    dataset = defs["DatasetSpec"]
    dataset["properties"].pop("path", None)
    dataset["description"] = (dataset.get("description", "") + " Give exactly one of `builtin` and `id`.").strip()
    return {**defs, "JobSpec": spec}


def _components() -> dict:
    _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
    components = dict(defs["$defs"])
    spec = json.loads(json.dumps(spec_json_schema()).replace('"#/$defs/', '"#/components/schemas/'))
    for name, schema in _api_spec_schemas(spec).items():
        if name in components:
            raise RuntimeError(f"schema name clash in the OpenAPI document: {name}")
        components[name] = schema
    for name, example in EXAMPLES.items():
        components[name]["examples"] = [example]
    return _refer(components)


def _refer(node):
    """`{"x-schema": NAME, …}` (a field the API models type loosely, e.g. `Job.spec`) → a `$ref` to NAME."""
    if isinstance(node, dict):
        if "x-schema" in node:
            return {"$ref": REF.format(model=node["x-schema"])}
        return {k: _refer(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_refer(v) for v in node]
    return node


def _operation_id(method: str, path: str) -> str:
    words = [w.strip("{}").replace(".", "_") for w in path.split("/") if w]
    return "_".join([method, *words])


def _links(paths: dict, components: dict) -> None:
    """OpenAPI links from each operation that answers one resource (a 200/201 body with an `id`) on a collection
    path `/things` or `/things/{thing_id}` to every operation on `/things/{thing_id}…`, so a client (or a
    fuzzer, statefully) can follow a created job to its history, events, model, predict, cancel and delete."""
    for path, item in paths.items():
        for method, op in item.items():
            for code, response in op["responses"].items():
                ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
                if code not in ("200", "201") or "id" not in components.get(ref.rsplit("/", 1)[-1], {}).get(
                        "properties", {}):
                    continue
                collection = path.rsplit("/{", 1)[0] if path.endswith("}") else path
                links = {}
                for target, target_item in paths.items():
                    tail = target.removeprefix(collection + "/")
                    if tail == target or not tail.startswith("{"):
                        continue
                    param = tail[1:tail.index("}")]
                    for target_method, target_op in target_item.items():
                        name = target_op["operationId"]
                        links[name] = {"operationId": name, "parameters": {param: "$response.body#/id"}}
                if links:
                    response["links"] = links


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    """The whole document (built once per process; it depends on code only)."""
    paths: dict = {}
    for path, methods in ROUTES.items():
        for method, (summary, body, responses, extra) in methods.items():
            if extra.get("security") != PUBLIC:  # any route behind a token can answer 401 and 429, and 503
                responses = {**responses, 401: "Problem", 429: "Problem", 503: "Problem"}
                if scopes.required_scope(method, path) == scopes.WRITE:  # a read-only token is refused
                    responses[403] = "Problem"
            op = {"summary": summary, "operationId": _operation_id(method, path), "tags": [path.split("/")[1]],
                  "responses": {str(code): _response(code, spec) for code, spec in sorted(responses.items())},
                  **extra}
            if body is not None:
                op["requestBody"] = {"required": True, "content": _content(*body)}
            if "201" in op["responses"] and "200" in op["responses"]:  # the earlier resource: also where it is
                op["responses"]["200"]["headers"] = dict(HEADERS[201])
            paths.setdefault(PREFIX + path, {})[method] = op
    components = _components()
    _links(paths, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "trainyard", "version": "1",
                 "description": "Train neural networks from a JSON job spec. Errors are RFC 9457 problem+json."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
