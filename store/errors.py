"""The exceptions repository functions raise; the API maps them to HTTP statuses (given in each docstring)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of everything the store raises on purpose."""


class NotFound(StoreError):
    """No such row for this owner (HTTP 404): another user's job or dataset is not found either."""


class DatasetNotFound(NotFound):
    """A spec names `dataset.id` that the owner has no dataset with (the API answers 422 at `dataset.id`)."""


class Conflict(StoreError):
    """The row's state forbids the operation (HTTP 409)."""


class JobFinished(Conflict):
    """Cancelling a job that already finished."""


class JobNotFinished(Conflict):
    """Deleting a job that is still queued or running."""


class ModelNotAvailable(Conflict):
    """Asking for the model of a job that has not succeeded."""


class DatasetInUse(Conflict):
    """Deleting a dataset that a queued or running job uses."""


class Purged(StoreError):
    """A part of a job (history, model) that retention removed (HTTP 410 Gone): it will not come back."""


class IdempotencyKeyReused(StoreError):
    """An Idempotency-Key the owner already used for a different request (HTTP 422 at `Idempotency-Key`)."""


class BadCursor(StoreError):
    """A pagination cursor that this store did not make (HTTP 400/422)."""


class BlobCorrupt(StoreError):
    """Stored bytes no longer match their sha256 (HTTP 409 `corrupt-blob`; never served)."""


class LeaseLost(StoreError):
    """The worker no longer owns the job (the reconciler gave it to another attempt): stop writing."""
