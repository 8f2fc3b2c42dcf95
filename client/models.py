"""Light wrappers around the service's JSON: resources (a job; client.sweeps' sweep) with attribute access, and
terminal statuses."""

from __future__ import annotations

from typing import Any

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class Resource:
    """A resource of the service as its JSON: `resource.data` is the JSON, `resource["key"]` reads it too, and the
    fields every resource has (id, name, status) are attributes."""

    def __init__(self, data: dict[str, Any]):
        self.data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A field of the JSON, or `default`."""
        return self.data.get(key, default)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, name={self.name!r}, status={self.status!r})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON, as the service sent it."""
        return dict(self.data)

    id = property(lambda self: str(self.data.get("id", "")))
    name = property(lambda self: self.data.get("name"))
    status = property(lambda self: self.data.get("status"))


class Job(Resource):
    """One job as `GET /jobs/{id}` returns it (or as `GET /jobs` summarises it: no spec, `error_code` for
    `error`)."""

    backend = property(lambda self: self.data.get("backend"))
    device = property(lambda self: self.data.get("device"))
    spec = property(lambda self: self.data.get("spec") or {})
    progress = property(lambda self: self.data.get("progress") or {})
    metrics = property(lambda self: self.data.get("metrics") or {})
    error = property(lambda self: self.data.get("error"))
    attempts = property(lambda self: self.data.get("attempts"))
    queue_position = property(lambda self: self.data.get("queue_position"))
    pending_reason = property(lambda self: self.data.get("pending_reason"))
    created_at = property(lambda self: self.data.get("created_at"))
    started_at = property(lambda self: self.data.get("started_at"))
    finished_at = property(lambda self: self.data.get("finished_at"))

    @property
    def done(self) -> bool:
        """True once the job is succeeded, failed or cancelled."""
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        """True if the job finished successfully."""
        return self.status == "succeeded"
