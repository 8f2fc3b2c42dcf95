"""`Upload`: a stored dataset file as the worker hands it to core (`trainyard.core.job.train_job`, `trainyard.core.datasets.load`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Upload:
    """An uploaded dataset's bytes and what was said about them at upload.

    `target` and `task` are the upload's defaults; a spec's own `dataset.target` / `dataset.task` take
    precedence. `labels` is the IDX labels file that goes with an IDX images file, else None.
    """

    data: bytes = field(repr=False)
    format: str  # "csv" | "npz" | "idx"
    target: str | None = None
    task: str | None = None
    labels: bytes | None = field(default=None, repr=False)

    @classmethod
    def of(cls, value: Upload | tuple) -> Upload:
        """`value` as an Upload; a plain `(data, format, target, task, labels)` tuple (scripts written before
        Upload) is taken in that order."""
        return value if isinstance(value, cls) else cls(*value)
