"""Uploaded and local dataset files (CSV, NPZ, IDX) into `RawData`, and `load` for any dataset spec.

`scan_file` (core.datasets.scan) checks the same files the same way without keeping their rows.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from trainyard.core.datasets.builtin import load_builtin
from trainyard.core.datasets.csvfile import csv_blocks, open_csv
from trainyard.core.datasets.decompress import open_capped, read_capped
from trainyard.core.datasets.idx import idx_pair
from trainyard.core.datasets.limits import Limits
from trainyard.core.datasets.npzfile import read_npz
from trainyard.core.datasets.raw import RawData, make_raw
from trainyard.core.datasets.targets import target_values
from trainyard.core.datasets.upload import Upload
from trainyard.core.errors import DatasetError

if TYPE_CHECKING:  # core.spec imports this package's catalog; a runtime import would be circular
    from trainyard.core.spec import DatasetSpec

FORMATS = ("csv", "npz", "idx")
# MNIST's naming pairs an images file with its labels file.
IDX_IMAGES, IDX_LABELS = "images-idx3-ubyte", "labels-idx1-ubyte"
NO_LIMITS = Limits()


def checked_format(data: bytes, fmt: str, target: str | None) -> str:
    """The format, normalised, after the checks every file shares (known format, not empty, target only for CSV)."""
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r}; valid: {', '.join(FORMATS)}")
    if not data:
        raise DatasetError(f"the {fmt.upper()} file is empty")
    if target is not None and fmt != "csv":
        raise DatasetError(f"target names a CSV column; a {fmt.upper()} file's targets are "
                           f"{'its y array' if fmt == 'npz' else 'its labels file'}")
    return fmt


def _load_csv(data: bytes, target: str | None, task: str | None, labels: bytes | None, limits: Limits) -> RawData:
    f = open_csv(open_capped(data, limits, "the CSV file"), target)
    blocks, texts = [], []
    for _, x, cells in csv_blocks(f, limits):
        blocks.append(x)
        texts.extend(cells)
    x = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return make_raw(x, target_values(texts), task=task, feature_names=f.features, target_names=[f.target])


def _load_npz(data: bytes, target: str | None, task: str | None, labels: bytes | None, limits: Limits) -> RawData:
    x, y = read_npz(data, limits)
    return make_raw(x, y, task=task)


def _load_idx(data: bytes, target: str | None, task: str | None, labels: bytes | None, limits: Limits) -> RawData:
    x, y = idx_pair(data, labels, limits)
    return make_raw(x, y, task=task, target_names=["label"])


_LOADERS = {"csv": _load_csv, "npz": _load_npz, "idx": _load_idx}


def load_file(data: bytes, fmt: str, *, target: str | None = None, task: str | None = None,
              labels: bytes | None = None, limits: Limits = NO_LIMITS) -> RawData:
    """Parse one uploaded dataset file; the task is inferred from the target unless given.

    Args:
        fmt: "csv" (header row; `target` names the target column, default the last),
            "npz" (arrays `X` and `y`) or "idx" (images, with the labels file as `labels`).
        limits: decompressed bytes per file, and samples x features, checked before data is read.
    """
    fmt = checked_format(data, fmt, target)
    return _LOADERS[fmt](data, target, task, labels, limits)


def labels_path(images_path: str) -> str:
    """The labels file next to an MNIST-named images file (`…images-idx3-ubyte[.gz]`)."""
    folder, name = os.path.split(images_path)
    stem = name.removesuffix(".gz")
    separator = next((s for s in ("-", ".") if stem.endswith(IDX_IMAGES.replace("-idx", s + "idx"))), None)
    if separator is None:
        raise DatasetError(f"{images_path}: an IDX images file must be named like train-{IDX_IMAGES}[.gz] "
                           f"so its labels file (train-{IDX_LABELS}[.gz]) can be found next to it")
    images = IDX_IMAGES.replace("-idx", separator + "idx")
    labels = stem.removesuffix(images) + IDX_LABELS.replace("-idx", separator + "idx")
    for candidate in (labels, labels + ".gz"):
        if os.path.isfile(os.path.join(folder, candidate)):
            return os.path.join(folder, candidate)
    raise DatasetError(f"{images_path}: its labels file {labels}[.gz] is not in {folder or '.'}")


def format_of(path: str) -> str:
    """The dataset format a file name says: .csv[.gz] → csv, .npz → npz, .idx / -ubyte / .gz → idx."""
    name = os.path.basename(path).lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith((".idx", ".gz", "-ubyte", ".ubyte")):
        return "idx"
    raise DatasetError(f"{path}: cannot tell the dataset format from the file name; "
                       "use .csv, .npz, or MNIST-style IDX names (…-images-idx3-ubyte[.gz])")


def load_path(spec: DatasetSpec, *, limits: Limits = NO_LIMITS) -> RawData:
    """Load the local file a `trainyard run` spec names as `{"path": FILE}`."""
    path = os.path.expanduser(spec.path or "")
    fmt = format_of(path)
    data = read_capped(path, limits.max_bytes)
    labels = read_capped(labels_path(path), limits.max_bytes) if fmt == "idx" else None
    return load_file(data, fmt, target=spec.target, task=spec.task, labels=labels, limits=limits)


def load(spec: DatasetSpec, *, upload: Upload | tuple | None = None, mnist_dir: str | None = None,
         limits: Limits = NO_LIMITS) -> RawData:
    """Load the dataset a spec names: a builtin, a local path, or an upload by id.

    Args:
        upload: for `{"id": …}`, the stored upload (`Upload`, or its fields as a tuple in order);
            the spec's own `target` and `task`, when set, take precedence over the upload's.
    """
    if spec.builtin is not None:
        return load_builtin(spec, mnist_dir=mnist_dir, limits=limits)
    if spec.path is not None:
        return load_path(spec, limits=limits)
    if upload is None:
        raise DatasetError(f"dataset {{'id': {spec.id!r}}} is an upload on a trainyard service and its file was not "
                           "supplied; a local run reads files: use {\"path\": FILE} instead")
    upload = Upload.of(upload)
    return load_file(upload.data, upload.format, target=spec.target or upload.target,
                     task=spec.task or upload.task, labels=upload.labels, limits=limits)
