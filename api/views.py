"""Rows → response bodies, shaped as the models in api.schemas say (tests/api check every body against them;
validating here too would cost a third of a `GET /jobs/{id}`)."""

from __future__ import annotations

from trainyard.api.urls import PREFIX
from trainyard.core.jsonsafe import isoformat, json_safe
from trainyard.core.stopping import stop_reason
from trainyard.store.models import Dataset, Job


def job_links(job_id: str) -> dict[str, str]:
    base = f"{PREFIX}/jobs/{job_id}"
    return {"self": base, "history": f"{base}/history", "events": f"{base}/events", "cancel": f"{base}/cancel",
            "model": f"{base}/model", "predict": f"{base}/predict", "confusion_matrix": f"{base}/confusion-matrix"}


def job_body(job: Job, *, queue_position: int | None = None, pending_reason: str | None = None) -> dict:
    """One job as GET /jobs/{id} shows it."""
    body = {
        "id": job.id, "name": job.name, "status": job.status, "backend": job.backend, "device": job.device,
        "spec": api_spec(job.spec), "progress": progress_body(job),
        "metrics": json_safe(job.metrics), "error": job.error, "attempts": job.attempts or 0,
        "cancel_requested": bool(job.cancel_requested),
        "queue_position": queue_position, "pending_reason": pending_reason,
        "worker": job.worker, "versions": job.versions, "reused_from": job.reused_from,
        "created_at": isoformat(job.created_at), "started_at": isoformat(job.started_at),
        "finished_at": isoformat(job.finished_at), "links": job_links(job.id),
    }
    body.update(retention_fields(job))
    body.update(trial_fields(job))
    body["links"]["pin"] = f"{PREFIX}/jobs/{job.id}/pin"
    return body


def progress_body(job: Job) -> dict:
    """`{epoch, epochs, stop_reason}`: a succeeded job that trained fewer epochs than asked says why (early stopping,
    or scikit-learn converging), so a bar at 30 % does not look like a job half done."""
    epoch = job.epoch or 0
    reason = stop_reason(job.spec, epoch) if job.status == "succeeded" and job.epochs and epoch < job.epochs else None
    return {"epoch": epoch, "epochs": job.epochs, "stop_reason": reason}


def trial_fields(job: Job) -> dict:
    """A sweep's trial says so: `sweep_id`, its `trial` number and the `params` its sampler chose (null otherwise)."""
    return {"sweep_id": job.sweep_id, "trial": job.trial, "params": job.params}


def retention_fields(job: Job) -> dict:
    """`pinned` (retention never purges it) and `purged`: what retention removed and when, or null."""
    purged = None if job.purged_at is None else {"at": isoformat(job.purged_at), "removed": list(job.purged or [])}
    return {"pinned": bool(job.pinned), "purged": purged}


def api_spec(spec: dict) -> dict:
    """The normalised spec as the API shows it: without `dataset.path`, which only local runs may use (the API
    refuses it, and its OpenAPI document does not declare it)."""
    dataset = spec.get("dataset")
    if isinstance(dataset, dict) and "path" in dataset and dataset["path"] is None:
        spec = {**spec, "dataset": {k: v for k, v in dataset.items() if k != "path"}}
    return spec


def job_summary(job: Job, *, queue_position: int | None = None, pending_reason: str | None = None) -> dict:
    """One job as GET /jobs lists it: no spec, and only the final metrics that are numbers (a list stays small
    however large its jobs' specs are)."""
    return {
        "id": job.id, "name": job.name, "status": job.status, "backend": job.backend, "device": job.device,
        "progress": progress_body(job), "metrics": scalar_metrics(job.metrics),
        "error_code": (job.error or {}).get("code"), "attempts": job.attempts or 0,
        "queue_position": queue_position, "pending_reason": pending_reason,
        "sweep_id": job.sweep_id, "trial": job.trial,
        "created_at": isoformat(job.created_at), "started_at": isoformat(job.started_at),
        "finished_at": isoformat(job.finished_at), "links": job_links(job.id), **retention_fields(job),
    }


def scalar_metrics(metrics: dict | None) -> dict | None:
    """The metrics that are single numbers (`loss`, `val_accuracy`, …), non-finite ones as null."""
    if metrics is None:
        return None
    return json_safe({k: v for k, v in metrics.items() if v is None or isinstance(v, (int, float))})


def dataset_summary(ds: Dataset) -> dict:
    """One uploaded dataset as lists show it: sizes and shapes, not its (up to max_features) names and labels."""
    return {
        "id": ds.id, "name": ds.name, "format": ds.format, "task": ds.task, "target": ds.target,
        "n_samples": ds.n_samples, "n_features": ds.n_features, "n_classes": ds.n_classes,
        "n_targets": ds.n_targets, "sha256": ds.sha256, "size_bytes": ds.size_bytes,
        "created_at": isoformat(ds.created_at), "links": {"self": f"{PREFIX}/datasets/{ds.id}"},
    }


def dataset_body(ds: Dataset) -> dict:
    """One uploaded dataset, with its class labels (when few) and feature names."""
    info = ds.info or {}
    return {**dataset_summary(ds), "classes": info.get("classes"), "feature_names": info.get("feature_names")}
