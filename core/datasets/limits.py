"""The size limits a dataset file is read under: checked from headers and while streaming, never after reading."""

from __future__ import annotations

from dataclasses import dataclass

from trainyard.core.errors import DatasetError

# Decompressed bytes one dataset file may expand to when nothing else is said (`trainyard run`, builtins).
# MNIST's training images are 47 MB uncompressed; the service passes its own `max_decompressed_bytes`.
DEFAULT_MAX_BYTES = 1 << 30


def mib(n: int) -> str:
    """`n` bytes for a message: whole MiB from 1 MiB up, else bytes."""
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n} bytes"


@dataclass(frozen=True)
class Limits:
    """How far reading one dataset file may go; the service names the setting behind each limit.

    Args:
        max_bytes: bytes one file may decompress to (a gzip'd CSV or IDX file, an NPZ's arrays together).
        max_cells: samples x features, checked before rows are read (None: no limit, as for `trainyard run`).
        max_features: columns (None: no limit).
        bytes_setting, cells_setting, features_setting: the names errors give the limits (e.g. "max_features").
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_cells: int | None = None
    bytes_setting: str = ""
    cells_setting: str = ""
    max_features: int | None = None  # columns: each gets a name, kept and shown with the dataset
    features_setting: str = ""

    def bytes_limit(self) -> str:
        """The byte limit as messages say it: "the 1024 MiB limit (max_decompressed_bytes)"."""
        return f"the {mib(self.max_bytes)} limit{_named(self.bytes_setting)}"

    def check_cells(self, n_samples: int, n_features: int, *, so_far: bool = False) -> None:
        """Refuse more than max_features columns, or `n_samples` x `n_features` over max_cells; `so_far`: the rows
        counted so far, not all of them."""
        if self.max_features is not None and n_features > self.max_features:
            raise DatasetError(f"{n_features:,} features is over the limit of {self.max_features:,}"
                               f"{_named(self.features_setting)}")
        if self.max_cells is not None and n_samples * n_features > self.max_cells:
            counted = f"at least {n_samples:,}" if so_far else f"{n_samples:,}"
            raise DatasetError(f"{counted} samples x {n_features} features is over the limit of "
                               f"{self.max_cells:,}{_named(self.cells_setting)}")


def _named(setting: str) -> str:
    return f" ({setting})" if setting else ""
