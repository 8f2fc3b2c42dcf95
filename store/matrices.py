"""Confusion matrices stored apart from the job row: one artifact per split (`confusion_test`, …), a compressed
.npz each, so a job's body stays small however many classes it has (k × k counts per split)."""

from __future__ import annotations

import io

import numpy as np

SPLITS = ("train", "val", "test")
KIND_PREFIX = "confusion_"
FORMAT = "npz"


def kind(split: str) -> str:
    """The artifact kind of one split's matrix."""
    return KIND_PREFIX + split


def split_of(kind_name: str) -> str | None:
    """The split an artifact kind holds the matrix of, or None for another kind of artifact."""
    return kind_name.removeprefix(KIND_PREFIX) if kind_name.startswith(KIND_PREFIX) else None


def encode(matrix: list | np.ndarray) -> bytes:
    """Counts → a compressed .npz in the smallest unsigned dtype that holds them (mostly zeros: a few KB)."""
    counts = np.asarray(matrix, dtype=np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, matrix=counts.astype(np.min_scalar_type(max(int(counts.max(initial=0)), 0))))
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """The matrix `encode` stored (never unpickles)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return npz["matrix"]
