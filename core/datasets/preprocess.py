"""Turn `RawData` into `PreparedData`: seeded (stratified) splits, scaling fitted on train, class indices."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from trainyard.core.datasets.prepared import PreparedData, Preprocessing
from trainyard.core.datasets.raw import DEFAULT_SEED, RawData
from trainyard.core.errors import DatasetError

if TYPE_CHECKING:  # core.spec imports this package's catalog; a runtime import would be circular
    from trainyard.core.spec import DatasetSpec


def split_size(fraction: float, n: int) -> int:
    """Rows a split fraction asks for, rounded up so a nonzero fraction never makes an empty split."""
    if fraction <= 0:
        return 0
    return math.ceil(round(fraction * n, 9))  # round first: 0.7 * 10 is 7.000000000000001


def _samples(n: int) -> str:
    return f"{n} sample" if n == 1 else f"{n} samples"


def _check_stratifiable(y: np.ndarray, sizes: dict[str, int]) -> None:
    """Say what to change when a stratified split cannot give every split every class."""
    classes, counts = np.unique(y, return_counts=True)
    k = len(classes)
    for name, size in sizes.items():
        if size and size < k:
            fix = ("lower test_split / validation_split" if name == "train"
                   else f"raise {name}_split to at least {k / len(y):.3g}, set it to 0")
            raise DatasetError(f"the {name} split has {_samples(size)}, too few to hold one of each of the {k} "
                               f"classes; {fix}, or set shuffle to false (unshuffled splits are not stratified)")
    needed = 1 + sum(1 for name, size in sizes.items() if size and name != "train")
    smallest = int(np.argmin(counts))
    if counts[smallest] < needed:
        raise DatasetError(f"class {classes[smallest].item()!r} has {_samples(int(counts[smallest]))}, too few to "
                           f"stratify into {needed} splits (each needs one); give it more samples, set "
                           "test_split / validation_split to 0, or set shuffle to false")


def _stratified(y: np.ndarray, rows: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split `rows` into (rest, `size` rows) keeping class proportions."""
    from sklearn.model_selection import train_test_split  # scikit-learn is slow to import; only when needed

    try:
        rest, part = train_test_split(rows, test_size=size, stratify=y[rows], random_state=seed, shuffle=True)
    except ValueError as exc:
        raise DatasetError(f"cannot stratify the split ({exc}); lower test_split / validation_split "
                           "or set shuffle to false") from None
    return rest, part


def split_rows(raw: RawData, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of the train, validation and test splits."""
    n = len(raw.x)
    n_test, n_val = split_size(spec.test_split or 0.0, n), split_size(spec.validation_split, n)
    n_train = n - n_test - n_val
    if n_train < 1:
        raise DatasetError(f"test_split {spec.test_split} and validation_split {spec.validation_split} leave "
                           f"no training samples out of {n}; lower them")
    seed = DEFAULT_SEED if spec.seed is None else spec.seed
    rows = np.arange(n)
    if spec.shuffle and raw.task == "classification" and (n_test or n_val):
        _check_stratifiable(raw.y, {"train": n_train, "test": n_test, "validation": n_val})
        rest, test = _stratified(raw.y, rows, n_test, seed) if n_test else (rows, rows[:0])
        train, val = _stratified(raw.y, rest, n_val, seed) if n_val else (rest, rows[:0])
        return train, val, test
    if spec.shuffle and (n_test or n_val):  # with nothing held out, keep the rows in the order given
        rows = np.random.default_rng(seed).permutation(n)
    # Unshuffled, the held-out rows are the last ones, as Keras's validation_split takes them.
    return rows[:n_train], rows[n_train:n_train + n_val], rows[n_train + n_val:]


def fit_scaler(x_train: np.ndarray, scaler: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (offset, scale) on the training rows; constant columns get (0, 1) and pass unchanged."""
    if scaler == "standard":
        offset, scale = x_train.mean(axis=0), x_train.std(axis=0)
    elif scaler == "minmax":
        offset, scale = x_train.min(axis=0), x_train.max(axis=0) - x_train.min(axis=0)
    else:
        raise DatasetError(f"unknown scaler {scaler!r}; valid: standard, minmax")
    # Dividing a constant column (e.g. digits' blank border pixels) by its zero spread would give NaN.
    constant = (x_train.max(axis=0) == x_train.min(axis=0)) | ~(scale > 0)
    offset[constant], scale[constant] = 0.0, 1.0
    return offset, scale


def prepare(raw: RawData, spec: DatasetSpec) -> PreparedData:
    """Split, scale (fitted on the training split) and encode targets as the spec says."""
    train, val, test = split_rows(raw, spec)
    n_features = raw.x.shape[1]
    pre = Preprocessing(task=raw.task, n_features=n_features, feature_names=list(raw.feature_names))
    if raw.task == "classification":
        labels = np.unique(raw.y)  # sorted, so class i is the i-th smallest label
        y = np.searchsorted(labels, raw.y).astype(np.int64)
        pre.classes = labels.tolist()  # .tolist() gives JSON scalars: int, float, bool or str
    else:
        y = raw.y.astype(np.float64, copy=False)
        pre.target_names = list(raw.target_names)
    x = raw.x.astype(np.float64, copy=False)
    if spec.scale is not None:
        offset, scale = fit_scaler(x[train], spec.scale)
        pre.scaler, pre.offset, pre.scale = spec.scale, offset.tolist(), scale.tolist()
    return PreparedData(
        x_train=pre.transform(x[train]), y_train=y[train],
        x_val=pre.transform(x[val]), y_val=y[val],
        x_test=pre.transform(x[test]), y_test=y[test],
        preprocessing=pre,
    )
