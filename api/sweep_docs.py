"""The sweeps' part of the OpenAPI document: their response models and routes (api.openapi adds them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from trainyard.api.schemas import _Out

# The normalised spec, declared by reference to the JobSpec schema (api.openapi turns the marker into a `$ref`).
NormalisedSpec = Annotated[dict[str, Any], WithJsonSchema({"type": "object", "x-schema": "JobSpec"})]
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Number = float | None  # non-finite numbers are sent as null

SweepStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TrialState = Literal["queued", "running", "succeeded", "failed", "cancelled", "pruned"]
SWEEP_ID = {"name": "sweep_id", "in": "path", "required": True, "schema": {"type": "string"}}


class SweepCounts(_Out):
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    pruned: int


class BestTrial(_Out):
    trial: int
    job_id: str
    value: float
    params: dict[str, Any]


class SweepError(_Out):
    code: Literal["all_trials_failed", "sampler_error"]
    message: str


class SweepSummary(_Out):
    """One sweep as `GET /sweeps` lists it (no base spec)."""

    id: str
    name: str | None
    status: SweepStatus = Field(description="queued until a trial starts; ends when every trial finished")
    created_at: Timestamp
    finished_at: Timestamp | None
    trials: int = Field(description="the budget: how many trials it runs")
    created: int = Field(description="trials created so far")
    parallel: int = Field(description="at most this many trials queued or running at once")
    space: dict[str, dict[str, Any]]
    objective: dict[str, str]
    sampler: dict[str, Any] = Field(description="name and seed (drawn and recorded when omitted)")
    pruner: dict[str, Any] = Field(description="name and its settings, defaults filled in")
    counts: SweepCounts = Field(description="trials by state")
    best: BestTrial | None = Field(description="the succeeded trial with the best objective")
    error: SweepError | None
    cancel_requested: bool
    pinned: bool
    links: dict[str, str]


class Sweep(SweepSummary):
    """One sweep as `GET /sweeps/{id}` returns it."""

    base: NormalisedSpec = Field(description="the normalised spec every trial starts from")


class SweepList(_Out):
    items: list[SweepSummary]
    next_cursor: str | None


class Trial(_Out):
    trial: int
    job_id: str = Field(description="the trial's job: GET /jobs/{job_id} (history, model, predict)")
    state: TrialState = Field(description="the job's status, or pruned when the sweep's pruner stopped it")
    params: dict[str, Any] | None
    value: Number = Field(description="the objective of a succeeded trial")
    epoch: int
    epochs: int
    error: dict[str, Any] | None


class TrialList(_Out):
    items: list[Trial]
    next_cursor: str | None


class SweepRequest(BaseModel):
    """A sweep to create (README "Sweeps" has every field)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    base: NormalisedSpec = Field(description="the job spec every trial starts from")
    space: dict[str, dict[str, Any]] = Field(description='{"path.into[0].spec": {"float"|"int": [low, high], '
                                                         '"log": bool, "step": n} | {"choice": [values]}}')
    objective: dict[str, str] = Field(description='{"metric": "val_accuracy", "direction": "maximize"}')
    sampler: dict[str, Any] | None = Field(None, description='{"name": "grid"|"random"|"tpe", "seed": n}')
    trials: int | None = Field(None, ge=1, description="the budget (a grid's default: every point)")
    parallel: int = Field(1, ge=1)
    pruner: dict[str, Any] | None = Field(None, description='{"name": "none"|"median"|"successive_halving"|'
                                                            '"hyperband", …settings}')


MODELS = [Sweep, SweepList, TrialList, SweepRequest]
EXAMPLES = {"SweepRequest": {
    "name": "xor-lr", "base": {"dataset": {"builtin": "xor"}, "model": {"layers": [
        {"type": "dense", "units": 4, "activation": "relu"}, {"type": "dense", "units": 1, "activation": "sigmoid"}]},
        "training": {"epochs": 50, "batch_size": 4, "seed": 1}},
    "space": {"training.optimizer.learning_rate": {"float": [0.001, 0.1], "log": True}},
    "objective": {"metric": "loss", "direction": "minimize"}, "sampler": {"name": "random", "seed": 0},
    "trials": 4, "parallel": 2}}
ROUTES: dict[str, dict[str, tuple]] = {
    "/sweeps": {
        "post": ("Create a hyperparameter sweep (its first trials are queued at once)",
                 ("application/json", "SweepRequest"), {201: "Sweep", 200: "Sweep", 413: "Problem", 422: "Problem"},
                 {"parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                  "schema": {"type": "string", "maxLength": 200},
                                  "description": "The same key from the same user returns the sweep it first "
                                                 "created (200 instead of 201)."}]}),
        "get": ("The caller's sweeps, newest first", None, {200: "SweepList", 422: "Problem"},
                {"parameters": [
                    {"name": "status", "in": "query", "style": "form", "explode": True,
                     "schema": {"type": "array", "items": {"type": "string", "enum": list(SweepStatus.__args__)}}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500,
                                                                "default": 50}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string", "minLength": 1}}]}),
    },
    "/sweeps/{sweep_id}": {
        "get": ("One sweep: status, counts by trial state, best trial", None, {200: "Sweep", 404: "Problem"},
                {"parameters": [SWEEP_ID]}),
        "delete": ("Delete a finished sweep and its trials' jobs", None, {204: None, 404: "Problem", 409: "Problem"},
                   {"parameters": [SWEEP_ID]}),
    },
    "/sweeps/{sweep_id}/trials": {
        "get": ("One page of the sweep's trials, by number or best objective first", None,
                {200: "TrialList", 404: "Problem", 422: "Problem"},
                {"parameters": [SWEEP_ID,
                                {"name": "sort", "in": "query",
                                 "schema": {"type": "string", "enum": ["trial", "objective"], "default": "trial"}},
                                {"name": "limit", "in": "query",
                                 "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
                                {"name": "cursor", "in": "query", "schema": {"type": "string", "minLength": 1}}]}),
    },
    "/sweeps/{sweep_id}/cancel": {
        "post": ("Cancel: no more trials, queued ones cancelled, running ones stopped", None,
                 {202: "Sweep", 404: "Problem", 409: "Problem"}, {"parameters": [SWEEP_ID]}),
    },
    "/sweeps/{sweep_id}/events": {
        "get": ("Server-Sent Events: `trial` per trial change, `sweep` per sweep change; ends when it finished", None,
                {200: ("text/event-stream", {"type": "string"}), 404: "Problem"}, {"parameters": [SWEEP_ID]}),
    },
}


def document(routes: dict, models: list, examples: dict | None = None) -> None:
    """Add the sweep routes, models and request example to api.openapi's."""
    routes.update(ROUTES)
    models += [m for m in MODELS if m not in models]
    if examples is not None:
        examples.update(EXAMPLES)
