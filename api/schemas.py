"""Request and response models (pydantic): the routes build their bodies with them and the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from trainyard.core.spec import BACKENDS

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL = ("succeeded", "failed", "cancelled")
Backend = Annotated[str, WithJsonSchema({"type": "string", "enum": list(BACKENDS)})]
Device = Literal["cpu", "gpu"]
# Times are ISO 8601 in UTC with a `Z` (core.jsonsafe.isoformat): RFC 3339 `date-time`.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
ErrorCode = Literal["invalid_spec", "dataset_error", "diverged", "timeout", "worker_lost", "cancelled", "internal",
                    "pruned"]  # pruned: a sweep's trial its pruner stopped (status cancelled)
# The normalised spec a job ran: the same schema as the request body (components/schemas/JobSpec), every
# default filled in. Declared by reference, so a generated client has one JobSpec model for both.
# (pydantic cannot refer to a schema it did not make: api.openapi turns the marker into the `$ref`.)
NormalisedSpec = Annotated[dict[str, Any], WithJsonSchema({"type": "object", "x-schema": "JobSpec"})]
Number = float | None  # non-finite numbers are sent as null
Label = Annotated[int | float | str | bool, Field(description="an original class label")]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Progress(_Out):
    epoch: int = Field(description="epochs completed so far")
    epochs: int = Field(description="epochs the spec asks for")
    stop_reason: str | None = Field(None, description="a succeeded job that trained fewer epochs than asked: why "
                                                      "(training.early_stopping, or scikit-learn converging); "
                                                      "null otherwise")


class ErrorItem(_Out):
    loc: str = Field(description='the field path, e.g. "model.layers[2].activation" ("" for the whole document)')
    msg: str


class JobErrorOut(_Out):
    code: ErrorCode = Field(description="the stable error code")
    message: str
    epoch: int | None = Field(None, description="diverged: the epoch whose loss became non-finite; pruned: the last "
                                                "epoch the pruner saw")
    errors: list[ErrorItem] | None = Field(None, description="invalid_spec: every error with its field path")


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
    backend: Backend
    device: Device
    spec: NormalisedSpec
    progress: Progress
    metrics: dict[str, Number] | None = Field(description="the final model evaluated on train, val_ and test_ "
                                                          "splits (confusion matrices: links.confusion_matrix)")
    error: JobErrorOut | None
    attempts: int
    cancel_requested: bool
    pinned: bool = Field(description="retention never purges a pinned job (POST/DELETE links.pin)")
    purged: Purged | None = Field(description="what retention removed from this finished job and when; null: nothing")
    queue_position: int | None = Field(description="1 = next to be claimed on its queue; null unless queued")
    pending_reason: str | None = Field(description="why a queued job waits; null unless queued")
    worker: str | None
    versions: dict[str, str] | None = Field(description="library versions that produced the result")
    reused_from: str | None = Field(description="the earlier identical job whose results this one reuses (it did "
                                                "not train); null when it trained")
    sweep_id: str | None = Field(description="the sweep this job is a trial of; null for a job submitted alone")
    trial: int | None = Field(description="its trial number in the sweep, from 0")
    params: dict[str, Any] | None = Field(description="the parameters the sweep's sampler chose: {path: value}")
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    links: dict[str, str]


class JobSummary(_Out):
    """One job as `GET /jobs` lists it: no spec, only the metrics that are numbers (`GET /jobs/{id}` has it all)."""

    id: str
    name: str | None
    status: JobStatus
    backend: Backend
    device: Device
    progress: Progress
    metrics: dict[str, Number] | None = Field(description="the final loss and metrics on each split")
    error_code: ErrorCode | None = Field(description="the failed job's error code (its message is in the job)")
    attempts: int
    queue_position: int | None = Field(description="1 = next to be claimed on its queue; null unless queued")
    pending_reason: str | None = Field(description="why a queued job waits; null unless queued")
    sweep_id: str | None = Field(description="the sweep this job is a trial of")
    trial: int | None = Field(description="its trial number in the sweep")
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    links: dict[str, str]
    pinned: bool = Field(description="retention never purges a pinned job")
    purged: Purged | None = Field(description="what retention removed from this finished job and when; null: nothing")


class JobList(_Out):
    items: list[JobSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class HistoryRow(_Out):
    """One epoch: `loss` and each metric averaged over the epoch's batches; `val_*` at its end (null when not
    finite)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": {"type": ["number", "null"]}})
    epoch: int = Field(description="counts from 1")
    loss: Number
    time: float = Field(description="seconds since training started")


class History(_Out):
    epochs: list[HistoryRow] = Field(
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
    predictions: list[Label | list[Number] | None] = Field(
        description="original class labels, numbers, or one list per row for several outputs")
    probabilities: list[list[float]] | None = Field(description="classification: one row of k >= 2 class probabilities")
    classes: list[Label] | None = Field(description="classification: the class label of each column of "
                                                    "`probabilities`")


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
    created_at: Timestamp
    links: dict[str, str]


class Dataset(DatasetSummary):
    classes: list[Label] | None
    feature_names: list[str] | None


class DatasetList(_Out):
    items: list[DatasetSummary]


class WorkerOut(_Out):
    """One live worker as `GET /workers` shows it to the caller."""

    name: str = Field(description="opaque; names neither the host nor the process")
    queues: list[str]
    device: Device
    concurrency: int
    current_job: str | None = Field(description="the first of current_jobs")
    current_jobs: list[str] = Field(description="the caller's jobs it runs now (an operator's: everyone's)")
    started_at: Timestamp | None
    last_seen: Timestamp | None
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


Param = float | bool | str | None  # a parameter's default value


class CatalogBackend(_Out):
    """What one backend can run: the names it accepts, why it refuses the rest, and its own defaults."""

    layers: list[str]
    activations: list[str]
    hidden_activations: list[str]
    output_activations: list[str]
    initializers: list[str]
    losses: list[str]
    optimizers: list[str]
    metrics: list[str]
    options: list[str] = Field(description="the names `backend_options` may hold")
    devices: list[Device]
    why_not: dict[str, str] = Field(description="a refused name or device → why this backend refuses it")
    rules: list[str] = Field(description="what else this backend requires of a spec")
    defaults: dict[str, Any] = Field(description="the settings this backend fills where the spec is silent")


class CatalogDataset(_Out):
    """A builtin dataset: its shape and the spec options it takes."""

    task: Literal["classification", "regression"]
    n_features: int
    n_classes: int | None
    n_samples: int | None = Field(description="null for the generated datasets (`n_samples` option)")
    n_targets: int
    description: str
    options: list[str] = Field(description="dataset options only this dataset takes")
    default_test_split: float


class LayerParam(_Out):
    required: bool
    default: Any = Field(description="the value an absent parameter takes")


class CatalogMetrics(_Out):
    classification: list[str]
    regression: list[str]


class Catalog(_Out):
    """What a spec may name, with every parameter's default (read from the code that validates specs)."""

    backends: dict[str, CatalogBackend]
    datasets: dict[str, CatalogDataset]
    layers: dict[str, dict[str, LayerParam]] = Field(description="layer type → its parameters")
    activations: dict[str, dict[str, Param]] = Field(description="name → its parameters and their defaults")
    initializers: dict[str, dict[str, Param]] = Field(description="name → its parameters and their defaults")
    losses: list[str]
    optimizers: dict[str, dict[str, Param]] = Field(description="name → its parameters and their defaults")
    metrics: CatalogMetrics
    default_losses: dict[str, str] = Field(description="output activation → the loss used when the spec gives none")
    aliases: dict[str, str] = Field(description="an accepted other name (Keras, scikit-learn) → trainyard's name")
    upload_formats: list[Literal["csv", "npz", "idx"]]
    devices: list[Device]


class Problem(_Out):
    """RFC 9457 problem details; 422s add `errors`."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ErrorItem] | None = Field(None, description='[{"loc": "model.layers[2].activation", "msg": ...}]')
    job_status: JobStatus | None = Field(None, description="no-model (409): the status of the job that has none")


class DatasetUpload(BaseModel):
    """The multipart form of `POST /datasets` (documented; parsed by hand from the form)."""

    file: bytes = Field(json_schema_extra={"format": "binary"})
    name: str
    format: Literal["csv", "npz", "idx"]
    target: str | None = Field(None, description="CSV target column (default: the last)")
    task: Literal["classification", "regression"] | None = Field(None, description="default: inferred from the target")
    labels: bytes | None = Field(None, json_schema_extra={"format": "binary"}, description="IDX labels file")
