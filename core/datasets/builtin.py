"""The builtin datasets of the catalog: logic gates, scikit-learn's shipped data, moons/circles and MNIST."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Callable

import numpy as np

from trainyard.core.datasets.catalog import BUILTINS, GATES, GENERATED
from trainyard.core.datasets.decompress import read_capped
from trainyard.core.datasets.idx import idx_pair
from trainyard.core.datasets.limits import Limits
from trainyard.core.datasets.raw import DEFAULT_SEED, RawData, make_raw
from trainyard.core.errors import DatasetError

if TYPE_CHECKING:  # core.spec imports this package's catalog; a runtime import would be circular
    from trainyard.core.spec import DatasetSpec

MNIST_ENV = "TRAINYARD_MNIST_DIR"
MNIST_FILES = {  # split → (images, labels), the names MNIST is distributed under
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_GATE_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
_GATE_OUTPUTS = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "nand": [1, 1, 1, 0], "xor": [0, 1, 1, 0]}


def _gate(name: str) -> RawData:
    y = np.array(_GATE_OUTPUTS[name], dtype=np.int64)
    return make_raw(_GATE_INPUTS.copy(), y, task="classification", feature_names=["x1", "x2"], target_names=[name])


def _sklearn(name: str) -> RawData:
    data, target, features = _shipped(name)
    task = BUILTINS[name].task
    targets = ["progression"] if name == "diabetes" else ["class"]
    return make_raw(data.copy(), target.copy(), task=task, feature_names=list(features), target_names=targets)


@functools.cache
def _shipped(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """A dataset scikit-learn ships, read once per process (parsing digits' file took 18 ms of a one-epoch digits
    job's 22); read-only, each job gets copies."""
    from sklearn import datasets  # imported here: scikit-learn costs a second at import time

    loaders: dict[str, Callable] = {
        "digits": datasets.load_digits, "iris": datasets.load_iris, "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine, "diabetes": datasets.load_diabetes,
    }
    bunch = loaders[name]()
    for array in (bunch.data, bunch.target):
        array.setflags(write=False)
    return bunch.data, bunch.target, tuple(str(f) for f in bunch.feature_names)


def _generated(spec: DatasetSpec) -> RawData:
    from sklearn import datasets

    seed = DEFAULT_SEED if spec.seed is None else spec.seed
    # DatasetSpec fills n_samples and noise with their defaults for the generated builtins.
    if spec.builtin == "moons":
        x, y = datasets.make_moons(n_samples=spec.n_samples, noise=spec.noise, random_state=seed)
    else:
        # factor 0.5 keeps the two rings apart at the default noise (scikit-learn's 0.8 nearly merges them).
        x, y = datasets.make_circles(n_samples=spec.n_samples, noise=spec.noise, factor=0.5, random_state=seed)
    return make_raw(x, y.astype(np.int64), task="classification", feature_names=["x1", "x2"], target_names=["class"])


def _find(directory: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def _mnist(mnist_dir: str | None, limits: Limits) -> RawData:
    """All 70,000 MNIST images (train then t10k); `prepare` makes the spec's own splits."""
    directory = mnist_dir or os.environ.get(MNIST_ENV)
    expected = ", ".join(f for pair in MNIST_FILES.values() for f in pair)
    if not directory:
        raise DatasetError(f"the mnist dataset needs its four IDX files; set {MNIST_ENV} to the folder that "
                           f"holds {expected} (each may end in .gz)")
    xs, ys = [], []
    for images, labels in MNIST_FILES.values():
        paths = [_find(directory, images), _find(directory, labels)]
        missing = [stem for stem, path in zip((images, labels), paths) if path is None]
        if missing:
            raise DatasetError(f"{MNIST_ENV}={directory} lacks {', '.join(missing)} (or .gz); "
                               f"the mnist dataset needs {expected}")
        x, y = idx_pair(read_capped(paths[0], limits.max_bytes), read_capped(paths[1], limits.max_bytes), limits)
        if x.shape[1] != BUILTINS["mnist"].n_features:
            raise DatasetError(f"{paths[0]}: MNIST images are 28x28 pixels; this file's have {x.shape[1]} pixels")
        xs.append(x)
        ys.append(y.astype(np.int64))
    features = [f"pixel_{i // 28}_{i % 28}" for i in range(BUILTINS["mnist"].n_features)]
    return make_raw(np.concatenate(xs), np.concatenate(ys), task="classification", feature_names=features,
                    target_names=["digit"])


def load_builtin(spec: DatasetSpec, *, mnist_dir: str | None = None, limits: Limits = Limits()) -> RawData:
    """Load the builtin dataset `spec.builtin`; nothing is downloaded.

    Args:
        mnist_dir: the folder of the MNIST IDX files; default the `TRAINYARD_MNIST_DIR`
            environment variable, read at call time.
        limits: what one (decompressed) MNIST file may hold.
    """
    name = spec.builtin
    if name not in BUILTINS:
        raise DatasetError(f"unknown builtin dataset {name!r}; valid: {', '.join(sorted(BUILTINS))}")
    if name in GATES:
        return _gate(name)
    if name in GENERATED:
        return _generated(spec)
    if name == "mnist":
        return _mnist(mnist_dir, limits)
    return _sklearn(name)
