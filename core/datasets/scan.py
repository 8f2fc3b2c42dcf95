"""`scan_file`: an uploaded dataset file checked as `load_file` checks it, in memory that does not grow with it.

The API stores an upload after this scan; it needs the shapes, the task, the names and the classes, never the
rows. So headers are checked against the limits first (NPZ and IDX: shapes and types; CSV: rows x columns
as the rows arrive), then the data streams through in blocks of a few MB that are checked and dropped: no
float64 copy of the features is ever made here (training makes its own, in the worker, in `prepare`).
"""

from __future__ import annotations

import math

import numpy as np

from trainyard.core.datasets.csvfile import csv_blocks, open_csv
from trainyard.core.datasets.decompress import open_capped
from trainyard.core.datasets.idx import open_pair, read_rows
from trainyard.core.datasets.limits import Limits
from trainyard.core.datasets.loaders import NO_LIMITS, checked_format
from trainyard.core.datasets.npzfile import member_blocks, open_npz
from trainyard.core.datasets.raw import (Scanned, check_shapes, feature_names_or_default, infer_task,
                                         target_names_or_default)
from trainyard.core.datasets.targets import TargetScan, check_layout, first_non_finite, non_finite_error


def _check_features(blocks, names: list[str]) -> None:
    """Refuse the first NaN or infinity among `(first row, first column, block)` pieces of the features."""
    for row, col, block in blocks:
        where = first_non_finite(block)
        if where is not None:
            raise non_finite_error((where[0], col + where[1], where[2]), names, "column", row)


def _targets(scan: TargetScan, blocks) -> None:
    for row, col, block in blocks:
        scan.add_values(block, row, col)


def _scan_csv(data: bytes, target: str | None, task: str | None, labels: bytes | None, limits: Limits) -> Scanned:
    f = open_csv(open_capped(data, limits, "the CSV file"), target)
    scan = TargetScan(task)
    rows = 0
    for first, _, cells in csv_blocks(f, limits):  # each block's features were checked; they are dropped here
        scan.add_texts(cells)
        rows = first + len(cells)
    check_shapes((rows, len(f.features)), np.dtype(np.float64), (rows,))
    task, classes = scan.finish([f.target])
    return Scanned(rows, len(f.features), task, f.features, [f.target], classes)


def _scan_npz(data: bytes, target: str | None, task: str | None, labels: bytes | None, limits: Limits) -> Scanned:
    archive, x, y = open_npz(data, limits)  # shapes, types and samples x features checked from the headers
    with archive:
        features = feature_names_or_default(None, x.shape[1])
        targets = target_names_or_default(None, y.shape)
        task = task or infer_task(y.dtype)
        check_layout(y.shape, y.dtype, task)  # y's type and shape, like X's, from the header: before any data
        _check_features(member_blocks(archive, x), features)
        scan = TargetScan(task)
        _targets(scan, member_blocks(archive, y))
    task, classes = scan.finish(targets, y.shape)
    return Scanned(x.shape[0], x.shape[1], task, features, targets, classes, len(targets))


def _scan_idx(data: bytes, target: str | None, task: str | None, labels: bytes | None, limits: Limits) -> Scanned:
    x, y = open_pair(data, labels, limits)  # shapes, types and samples x features checked from the headers
    n, width = x.shape[0], math.prod(x.shape[1:])
    check_shapes((n, width), x.dtype, y.shape)
    features = feature_names_or_default(None, width)
    task = task or infer_task(y.dtype)
    check_layout(y.shape, y.dtype, task)
    _check_features(_positioned(read_rows(x)), features)
    scan = TargetScan(task)
    _targets(scan, _positioned(read_rows(y)))
    task, classes = scan.finish(["label"], y.shape)
    return Scanned(n, width, task, features, ["label"], classes)


def _positioned(blocks):
    row = 0
    for block in blocks:
        yield row, 0, block
        row += len(block)


_SCANNERS = {"csv": _scan_csv, "npz": _scan_npz, "idx": _scan_idx}


def scan_file(data: bytes, fmt: str, *, target: str | None = None, task: str | None = None,
              labels: bytes | None = None, limits: Limits = NO_LIMITS) -> Scanned:
    """What `describe(load_file(...))` would say about a file, refusing what `load_file` refuses, without
    keeping its rows: peak memory is a few blocks plus the distinct class labels, whatever the file holds."""
    fmt = checked_format(data, fmt, target)
    return _SCANNERS[fmt](data, target, task, labels, limits)
