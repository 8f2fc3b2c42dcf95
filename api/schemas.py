"""Request and response models (pydantic): the routes build their bodies with them and the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL = ("succeeded", "failed", "cancelled")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Progress(_Out):
    epoch: int = Field(description="epochs completed so far")
    epochs: int = Field(description="epochs the spec asks for")


class JobErrorOut(_Out):
    model_config = ConfigDict(extra="allow")
    code: str = Field(description="invalid_spec, dataset_error, diverged, timeout, worker_lost, cancelled or internal")
    message: str


class Purged(_Out):
    """What retention removed from a finished job (its row, metrics and confusion matrices stay)."""

    at: str = Field(description="when (ISO 8601 UTC)")
    removed: list[Literal["history", "checkpoint", "model"]] = Field(
        description="the parts removed; asking for one of them is a 410")


class Job(_Out):
    """One job as `GET /jobs/{id}` returns it."""

    id: str
    name: str | None
    status: JobStatus
    backend: str
    device: str
    spec: dict[str, Any] = Field(description="the normalised spec: every default filled in (schema: JobSpec)")
    progress: Progress
    metrics: dict[str, Any] | None = Field(description="the final model evaluated on train, val_ and test_ splits "
                                                       "(confusion matrices: links.confusion_matrix)")
    error: JobErrorOut | None
    attempts: int
    cancel_requested: bool
    pinned: bool = Field(description="retention never purges a pinned job (POST/DELETE links.pin)")
    purged: Purged | None = Field(description="what retention removed from this finished job and when; null: nothing")
    queue_position: int | None = Field(description="1 = next to be claimed on its queue; null unless queued")
    pending_reason: str | None = Field(description="why a queued job waits; null unless queued")
    worker: str | None
    versions: dict[str, Any] | None = Field(description="library versions that produced the result")
    reused_from: str | None = Field(description="the earlier identical job whose results this one reuses (it did "
                                                "not train); null when it trained")
    created_at: str
    started_at: str | None
    finished_at: str | None
    links: dict[str, str]


class JobSummary(_Out):
    """One job as `GET /jobs` lists it: no spec, only the metrics that are numbers (`GET /jobs/{id}` has it all)."""

    id: str
    name: str | None
    status: JobStatus
    backend: str
    device: str
    progress: Progress
    metrics: dict[str, float | None] | None = Field(description="the final loss and metrics on each split")
    error_code: str | None = Field(description="the failed job's error code (its message is in the job)")
    attempts: int
    queue_position: int | None = Field(description="1 = next to be claimed on its queue; null unless queued")
    pending_reason: str | None = Field(description="why a queued job waits; null unless queued")
    created_at: str
    started_at: str | None
    finished_at: str | None
    links: dict[str, str]


class JobList(_Out):
    items: list[JobSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class History(_Out):
    epochs: list[dict[str, Any]] = Field(
        description='rows {"epoch": 1, "loss": ..., "<metric>": ..., "val_loss": ..., "time": ...} with '
                    '`since < epoch <= since + limit`')
    next_since: int = Field(description="pass as `since` for the next page (also to follow a running job)")
    has_more: bool = Field(description="whether epochs after this page exist now")


class ConfusionMatrix(_Out):
    split: Literal["train", "val", "test"]
    n_classes: int
    matrix: list[list[int]] = Field(description="counts: rows are true classes, columns predicted ones, in the "
                                                "order of predict's `classes`")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[list[float]] = Field(description="raw, unscaled feature rows", min_length=1)


class PredictResponse(_Out):
    predictions: list[Any] = Field(description="original class labels, numbers, or one list per row for several outputs")
    probabilities: list[list[float]] | None = Field(description="classification: one row of k >= 2 class probabilities")
    classes: list[Any] | None = Field(description="classification: the class label of each column of `probabilities`")


class DatasetSummary(_Out):
    """One dataset as `GET /datasets` lists it: no class labels or feature names (`GET /datasets/{id}` has them)."""

    id: str
    name: str
    format: str
    task: Literal["classification", "regression"]
    target: str | None
    n_samples: int
    n_features: int
    n_classes: int | None
    n_targets: int
    sha256: str
    size_bytes: int
    created_at: str
    links: dict[str, str]


class Dataset(DatasetSummary):
    classes: list[Any] | None
    feature_names: list[str] | None


class DatasetList(_Out):
    items: list[DatasetSummary]


class WorkerOut(_Out):
    """One live worker as `GET /workers` shows it to the caller."""

    name: str = Field(description="opaque; names neither the host nor the process")
    queues: list[str]
    device: str
    concurrency: int
    current_job: str | None = Field(description="the first of current_jobs")
    current_jobs: list[str] = Field(description="the caller's jobs it runs now (an operator's: everyone's)")
    started_at: str | None
    last_seen: str | None
    hostname: str | None = Field(None, description="operators only (operator_users)")
    pid: int | None = Field(None, description="operators only (operator_users)")


class WorkerList(_Out):
    items: list[WorkerOut]


class Check(_Out):
    ok: bool
    detail: str


class Health(_Out):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Check]


class Catalog(_Out):
    model_config = ConfigDict(extra="allow")
    backends: dict[str, Any]
    datasets: dict[str, Any]
    layers: dict[str, Any]
    activations: dict[str, Any]
    initializers: dict[str, Any]
    losses: list[str]
    optimizers: dict[str, Any]
    metrics: dict[str, Any]
    aliases: dict[str, str]


class Problem(_Out):
    """RFC 9457 problem details; 422s add `errors`."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = Field(None, description='[{"loc": "model.layers[2].activation", "msg": ...}]')


class DatasetUpload(BaseModel):
    """The multipart form of `POST /datasets` (documented; parsed by hand from the form)."""

    file: bytes = Field(json_schema_extra={"format": "binary"})
    name: str
    format: Literal["csv", "npz", "idx"]
    target: str | None = Field(None, description="CSV target column (default: the last)")
    task: Literal["classification", "regression"] | None = Field(None, description="default: inferred from the target")
    labels: bytes | None = Field(None, json_schema_extra={"format": "binary"}, description="IDX labels file")
