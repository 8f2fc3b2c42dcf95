"""Datasets: every builtin matches the catalog, every loader error says what is wrong, splits and scaling are right."""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

from trainyard.core.datasets import (MNIST_ENV, Limits, RawData, describe, fit_scaler, load, load_builtin, load_file,
                                     load_path, prepare, scan_file)
from trainyard.core.datasets.catalog import BUILTINS, GENERATED
from trainyard.core.datasets.targets import MAX_CLASSES
from trainyard.core.errors import DatasetError
from trainyard.core.spec import DatasetSpec

# --- helpers -----------------------------------------------------------------------------------


def idx_bytes(a: np.ndarray) -> bytes:
    """An IDX file holding `a` (unsigned bytes), as MNIST's are written."""
    return struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(">u1").tobytes()


def write_mnist(folder, n_train: int = 20, n_test: int = 10, gz: bool = False) -> None:
    """Small MNIST-shaped IDX files: 28x28 images, every digit present in each file."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, a, dims in (("images", images, 3), ("labels", labels, 1)):
            data = idx_bytes(a)
            name = f"{split}-{kind}-idx{dims}-ubyte" + (".gz" if gz else "")
            (folder / name).write_bytes(gzip.compress(data) if gz else data)


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def csv_raw(text: str, **kwargs) -> RawData:
    return load_file(text.encode(), "csv", **kwargs)


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(DatasetError) as exc:
        fn(*args, **kwargs)
    return str(exc.value)


def error_and_peak(fn, *args, **kwargs) -> tuple[str, int]:
    """The DatasetError message and the most bytes allocated on the way to it (not time: the CI is shared)."""
    tracemalloc.start()
    try:
        return error_of(fn, *args, **kwargs), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def classification(n_per_class: dict, n_features: int = 3, seed: int = 0) -> RawData:
    """A synthetic classification dataset with the given class sizes."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, label) for label, n in n_per_class.items()])
    x = rng.normal(size=(len(y), n_features))
    return RawData(x=x, y=y, task="classification", feature_names=[f"f{i}" for i in range(n_features)],
                   target_names=["y"])


# --- builtins ----------------------------------------------------------------------------------

FIXED = [name for name, info in BUILTINS.items() if info.n_samples is not None]


@pytest.mark.parametrize("name", FIXED)
def test_builtin_matches_the_catalog(name):
    raw = load_builtin(DatasetSpec(builtin=name))
    info = BUILTINS[name]
    assert raw.x.dtype == np.float64 and raw.x.shape == (info.n_samples, info.n_features)
    assert len(raw.feature_names) == info.n_features
    got = describe(raw)
    assert (got.task, got.n_features, got.n_classes, got.n_samples, got.n_targets) == (
        info.task, info.n_features, info.n_classes, info.n_samples, info.n_targets)


def test_a_dataset_scikit_learn_ships_is_read_once_per_process_and_each_load_gets_its_own_arrays(monkeypatch):
    """Issue 11 (small jobs): parsing digits' file was 18 ms of a one-epoch digits job's 22."""
    from sklearn import datasets

    from trainyard.core.datasets import builtin

    reads, read = [], datasets.load_digits
    monkeypatch.setattr(datasets, "load_digits", lambda: reads.append(1) or read())
    builtin._shipped.cache_clear()
    try:
        first = load_builtin(DatasetSpec(builtin="digits"))
        first.x[0, 0] = -1.0  # a job that scales its data in place changes only its own copy
        second = load_builtin(DatasetSpec(builtin="digits"))
        assert reads == [1]
        assert second.x[0, 0] == read().data[0, 0] != -1.0
        np.testing.assert_array_equal(second.y, read().target)
    finally:
        builtin._shipped.cache_clear()


@pytest.mark.parametrize("name, outputs", [("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1]),
                                           ("nand", [1, 1, 1, 0]), ("xor", [0, 1, 1, 0])])
def test_logic_gates_are_truth_tables(name, outputs):
    raw = load_builtin(DatasetSpec(builtin=name))
    assert raw.x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert raw.y.tolist() == outputs


@pytest.mark.parametrize("name", GENERATED)
def test_generated_datasets_follow_n_samples_noise_and_seed(name):
    spec = DatasetSpec(builtin=name, n_samples=60, noise=0.2, seed=3)
    a, b = load_builtin(spec), load_builtin(spec)
    other = load_builtin(DatasetSpec(builtin=name, n_samples=60, noise=0.2, seed=4))
    assert a.x.shape == (60, BUILTINS[name].n_features) and describe(a).n_classes == BUILTINS[name].n_classes
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, other.x)
    noiseless = load_builtin(DatasetSpec(builtin=name, n_samples=60, noise=0.0, seed=3))
    assert not np.array_equal(a.x, noiseless.x)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_idx_files(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    raw = load_builtin(DatasetSpec(builtin="mnist"), mnist_dir=str(tmp_path))
    info = describe(raw)
    assert raw.x.shape == (30, BUILTINS["mnist"].n_features) and raw.x.dtype == np.uint8  # prepare makes float64
    assert (info.task, info.n_classes) == ("classification", BUILTINS["mnist"].n_classes)
    assert raw.y.tolist() == list(range(10)) * 3  # train rows, then t10k rows


def test_mnist_dir_comes_from_the_environment_at_call_time(tmp_path, monkeypatch):
    write_mnist(tmp_path)
    monkeypatch.setenv(MNIST_ENV, str(tmp_path))
    assert load(DatasetSpec(builtin="mnist")).x.shape == (30, 784)


def test_mnist_without_files_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv(MNIST_ENV, raising=False)
    msg = error_of(load_builtin, DatasetSpec(builtin="mnist"))
    assert MNIST_ENV in msg and "train-images-idx3-ubyte" in msg and "t10k-labels-idx1-ubyte" in msg
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    msg = error_of(load_builtin, DatasetSpec(builtin="mnist"), mnist_dir=str(tmp_path))
    assert "lacks t10k-labels-idx1-ubyte" in msg


# --- CSV ---------------------------------------------------------------------------------------

def test_csv_target_defaults_to_the_last_column_and_infers_the_task():
    raw = csv_raw("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    assert raw.feature_names == ["a", "b"] and raw.target_names == ["label"]
    assert raw.x.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]] and raw.task == "classification"
    regression = csv_raw("price,a\n1.5,1\n2.25,2\n3,3\n4,4\n", target="price")
    assert regression.task == "regression" and regression.y.dtype == np.float64
    assert regression.feature_names == ["a"]
    assert csv_raw("a,y\n1,0.5\n2,1\n3,0\n4,1\n", task="classification").task == "classification"


def test_csv_string_targets_and_gzip():
    text = "x,species\n1,cat\n2,dog\n3,cat\n4,dog\n"
    raw = load_file(gzip.compress(text.encode()), "csv")
    assert raw.task == "classification" and raw.y.tolist() == ["cat", "dog", "cat", "dog"]


@pytest.mark.parametrize("text, kwargs, message", [
    ("a,b,y\n1,2,0\n3,nan,1\n5,6,0\n7,8,1\n", {}, "column 'b', row 2: nan is not a finite number"),
    ("a,b,y\n1,2,0\n3,4,1\n5,inf,0\n7,8,1\n", {}, "column 'b', row 3: inf is not a finite number"),
    ("a,b,y\n1,2,0\n3,4,1\n5,6\n7,8,1\n", {}, "row 3 (after the header) has 2 values but the header has 3"),
    ("a,b,y\n1,2,0\n3,four,1\n5,6,0\n7,8,1\n", {}, "column 'b', row 2: 'four' is not a number"),
    ("a,b,y\n1,2,0\n3,,1\n5,6,0\n7,8,1\n", {}, "column 'b', row 2: missing value"),
    ("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n", {"target": "label"},
     "target column 'label' is not in the CSV; its columns are: a, b, y"),
    ("", {}, "the CSV file is empty"),
    ("\n\n", {}, "the CSV file is empty"),
    ("a,b,y\n", {}, "has a header but no data rows"),
    ("a,b,y\n1,2,0\n3,4,1\n", {}, "2 samples is too few"),
    ("1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,9,1\n", {}, "needs a header row"),
    ("a,a,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n", {}, "repeats column names: 'a'"),
    ("y\n0\n1\n0\n1\n", {}, "needs feature columns too"),
    ("a,y\n1,0\n2,0\n3,0\n4,0\n", {}, "the target has only one class (0); classification needs at least 2"),
    ("a,y\n1,x\n2,x\n3,x\n4,x\n", {}, "the target has only one class ('x'); classification"),  # not np.str_('x')
    ("label,a,b\nx,1,2\ny,3,4\nx,5,6\ny,7,8\n", {},
     "column 'label', row 1: 'x' is not a number; with no target named, the target is the last column, 'b': name the "
     "label column with target (trainyard datasets upload --target COLUMN)"),
    ("a;b;label\n1;2;x\n3;4;y\n5;6;x\n7;8;y\n", {"target": "label"},
     "the CSV header is one column, 'a;b;label': the file looks semicolon-separated; trainyard reads comma-separated "
     "files (save it with commas)"),
    ("a,y\n1,cat\n2,dog\n3,cat\n4,dog\n", {"task": "regression"}, "regression targets must be numbers"),
    ("a,y\n1,0.5\n2,\n3,1\n4,1\n", {}, "column 'y', row 2: missing target value"),
    ("a,y\n1,0.5\n2,nan\n3,1\n4,1\n", {}, "target column 'y', row 2: nan is not a finite number"),
])
def test_csv_errors_say_what_and_where(text, kwargs, message):
    assert message in error_of(csv_raw, text, **kwargs)


def test_csv_must_be_utf8():
    assert "not UTF-8" in error_of(load_file, b"a,y\n\xff,1\n", "csv")


# --- NPZ ---------------------------------------------------------------------------------------

def test_npz_loads_x_and_y_with_multi_target_regression():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    raw = load_file(npz_bytes(X=x, y=np.ones((6, 2)) * [[1.5, 2.5]]), "npz")
    assert raw.x.dtype == np.float32 and raw.task == "regression"  # kept as stored; prepare makes float64
    info = describe(raw)
    assert (info.n_features, info.n_targets, info.n_classes) == (2, 2, None)
    labels = load_file(npz_bytes(X=x, y=np.array(["a", "b"] * 3)), "npz")
    assert labels.task == "classification" and labels.y.tolist() == ["a", "b"] * 3


def test_npz_refuses_object_arrays_and_missing_members():
    objects = npz_bytes(X=np.zeros((4, 2)), y=np.array([1, "a", None, 2.0], dtype=object))
    assert "holds Python objects" in error_of(load_file, objects, "npz")
    assert "needs arrays X and y; it has: X" in error_of(load_file, npz_bytes(X=np.zeros((4, 2))), "npz")
    assert "not an NPZ file" in error_of(load_file, b"PK not really", "npz")
    assert "target names a CSV column" in error_of(load_file, npz_bytes(X=np.zeros((4, 2))), "npz", target="y")


def test_npz_with_a_lying_array_header_is_refused_before_allocating():
    good = npz_bytes(X=np.zeros((4, 2)), y=np.arange(4))
    members = {}
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        for name in z.namelist():
            members[name] = z.read(name)
    # Claim 10^12 rows in X's header (eating into its space padding); the data stays 64 bytes.
    lie = members["X.npy"].replace(b"(4, 2), }" + b" " * 12, b"(1000000000000, 2), }")
    assert len(lie) == len(members["X.npy"]) and lie != members["X.npy"]
    members["X.npy"] = lie
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    msg = error_of(load_file, buf.getvalue(), "npz")
    assert "header declares shape (1000000000000, 2) of float64, more than the 192 bytes it holds" in msg


def test_npz_zip_bomb_is_refused_by_declared_size():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("X.npy", bytes(8 << 20))
        z.writestr("y.npy", b"")
    msg, peak = error_and_peak(load_file, buf.getvalue(), "npz", limits=Limits(max_bytes=1 << 20))
    assert "decompress to" in msg and peak < 1 << 20  # nothing decompressed


# --- IDX ---------------------------------------------------------------------------------------

def test_idx_pair_loads_and_checks_counts():
    images = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3)
    raw = load_file(gzip.compress(idx_bytes(images)), "idx", labels=idx_bytes(np.array([0, 1, 2, 1, 0])))
    assert raw.x.shape == (5, 6) and raw.x[1].tolist() == list(range(6, 12)) and raw.task == "classification"
    msg = error_of(load_file, idx_bytes(images), "idx", labels=idx_bytes(np.array([0, 1, 0, 1])))
    assert "5 images but the labels file 4 labels" in msg
    assert "needs two files" in error_of(load_file, idx_bytes(images), "idx")
    assert "not an IDX file" in error_of(load_file, b"\x01\x02\x03\x04", "idx", labels=b"x")
    # zero images: refused as too few samples (reshape(0, -1) used to raise a bare ValueError)
    empty = idx_bytes(np.zeros((0, 2, 3)))
    assert "0 samples is too few" in error_of(load_file, empty, "idx", labels=idx_bytes(np.zeros(0)))


def test_idx_with_a_lying_header_is_refused_quickly():
    # Declares 4 billion 28x28 images (3 TB) but holds 100 bytes.
    lying = struct.pack(">BBBBIII", 0, 0, 0x08, 3, 4_000_000_000, 28, 28) + bytes(100)
    msg, peak = error_and_peak(load_file, lying, "idx", labels=idx_bytes(np.zeros(4)))
    assert "header declares shape (4000000000, 28, 28)" in msg and "holds 100 data bytes" in msg
    assert peak < 1 << 20  # nothing sized from the header


def test_gzip_bomb_is_refused_quickly():
    small = Limits(max_bytes=1 << 20)
    bomb = gzip.compress(b"a,y\n" + b"0,0\n" * (8 << 20), compresslevel=1)  # 32 MiB of rows in ~100 KB
    msg, peak = error_and_peak(load_file, bomb, "csv", limits=small)
    assert msg == "the CSV file: decompresses to more than the 1 MiB limit"
    assert peak < 16 << 20  # the rows of the first MiB; all 32 MiB of them would take ~300 MB
    # An IDX header that declares more than the limit is refused before its data is inflated at all.
    images = gzip.compress(idx_bytes(np.zeros((1 << 19, 8, 8))), compresslevel=1)
    msg, peak = error_and_peak(load_file, images, "idx", labels=idx_bytes(np.zeros(1 << 19)), limits=small)
    assert msg == ("IDX images: the header declares shape (524288, 8, 8) (33554432 data bytes), so it decompresses "
                   "to more than the 1 MiB limit")
    assert peak < 1 << 20
    # A header that declares less than the gzip'd data holds: refused at the first byte past it.
    short = gzip.compress(idx_bytes(np.zeros((4, 2))) + bytes(32 << 20), compresslevel=1)
    msg, peak = error_and_peak(load_file, short, "idx", labels=idx_bytes(np.arange(4) % 2), limits=small)
    assert msg == ("IDX images: the header declares shape (4, 2) (8 data bytes) but the file holds more than 8 "
                   "data bytes")
    assert peak < 1 << 20


# --- local paths and dispatch ------------------------------------------------------------------

def test_load_path_by_extension(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,t\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n")
    assert load_path(DatasetSpec(path=str(tmp_path / "d.csv"), target="t")).x.shape == (4, 2)
    (tmp_path / "d.npz").write_bytes(npz_bytes(X=np.zeros((4, 3)), y=np.array([0, 1, 0, 1])))
    assert load_path(DatasetSpec(path=str(tmp_path / "d.npz"))).x.shape == (4, 3)
    write_mnist(tmp_path, gz=True)
    raw = load(DatasetSpec(path=str(tmp_path / "t10k-images-idx3-ubyte.gz")))
    assert raw.x.shape == (10, 784) and raw.y.tolist() == list(range(10))


def test_load_path_errors(tmp_path):
    assert "not found" in error_of(load_path, DatasetSpec(path=str(tmp_path / "nope.csv")))
    assert "cannot tell the dataset format" in error_of(load_path, DatasetSpec(path=str(tmp_path / "d.txt")))
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    msg = error_of(load_path, DatasetSpec(path=str(tmp_path / "train-images-idx3-ubyte")))
    assert "labels file train-labels-idx1-ubyte[.gz] is not in" in msg
    (tmp_path / "x.idx").write_bytes(b"")
    assert "must be named like" in error_of(load_path, DatasetSpec(path=str(tmp_path / "x.idx")))


def test_load_by_id_uses_the_upload_and_the_spec_overrides():
    data = b"a,b,y\n1,0,1\n2,1,2\n3,0,1\n4,1,2\n"
    raw = load(DatasetSpec(id="ds1"), upload=(data, "csv", None, None, None))
    assert raw.task == "classification" and raw.target_names == ["y"]
    raw = load(DatasetSpec(id="ds1", target="b", task="regression"), upload=(data, "csv", "y", None, None))
    assert raw.target_names == ["b"] and raw.task == "regression"
    assert "was not supplied; a local run reads files: use {\"path\": FILE}" in error_of(load, DatasetSpec(id="ds1"))


# --- scan_file: what the API checks, rows not kept ------------------------------------------------

SCAN_CSVS = [
    "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n",
    "a,b,y\n1,2,cat\n3,4,dog\n5,6,cat\n7,8,dog\n",
    "a,b,y\n1,2,0.5\n3,4,1.5\n5,6,2\n7,8,1\n",
    "a,b,y\n1,2,nan\n3,4,1.5\n5,6,2\n7,8,1\n",  # a NaN target: refused as a number, a label as text
    "a,b,y\n1,2,007\n3,4,7\n5,6,x\n7,8,1\n",  # ints, then text: every label kept as written
    "a,b,y\n1,nan,1\n3,4,0\n5,6,1\n7,8,0\n",
    "a,b,y\n1,,1\n3,4,0\n5,6,1\n7,8,0\n",
    "a,b,y\n1,2,\n3,4,0\n5,6,1\n7,8,0\n",
    "a,b,y\n1,2,1\n3,4,0\n",
    "a,b,y\n1,2,0\n , , \n3,4,1\n5,6,0\n7,8,1\n,,\n1,2\n",  # blank rows are not counted
    "\ufeffa,y\r\n1,0\r\n\r\n2,1\r\n3,0\r\n4,1",
    'a,y\n"1",0\n2,"x\ny"\n3,0\n4,1\n',
    "a,y\n1,99999999999999999999\n2,1\n3,0\n4,1.0\n",
]
SCAN_NPZS = [
    {"X": np.arange(12, dtype=np.float32).reshape(6, 2), "y": np.ones((6, 2)) * [[1.5, 2.5]]},
    {"X": np.arange(12, dtype=np.uint8).reshape(6, 2), "y": np.array([b"a", b"b"] * 3)},
    {"X": np.asfortranarray(np.arange(18.0).reshape(6, 3)), "y": np.array([0, 1, 0, 1, 0, np.nan])},
    {"X": np.where(np.arange(12.0).reshape(6, 2) > 5, np.inf, 1.0), "y": np.arange(6) % 2},
    {"X": np.zeros((6, 2), ">f8"), "y": np.arange(6).astype(">i4") % 2},
    {"X": np.zeros((6, 2)), "y": np.arange(6).astype(complex)},
    {"X": np.zeros((3, 2)), "y": np.arange(3) % 2},
]


def outcome(fn, *args, **kwargs):
    """What a loader says about a file: its catalog facts, names and classes, or its error."""
    try:
        data = fn(*args, **kwargs)
    except DatasetError as exc:
        return str(exc)
    classes = data.classes()
    return describe(data), data.feature_names, data.target_names, None if classes is None else classes.tolist()


@pytest.mark.parametrize("text", SCAN_CSVS)
@pytest.mark.parametrize("kwargs", [{}, {"task": "regression"}, {"task": "classification"}, {"target": "a"}])
def test_scan_says_what_load_says_about_csv(text, kwargs):
    for data in (text.encode(), gzip.compress(text.encode())):
        assert outcome(scan_file, data, "csv", **kwargs) == outcome(load_file, data, "csv", **kwargs)


@pytest.mark.parametrize("arrays", SCAN_NPZS)
@pytest.mark.parametrize("task", [None, "regression", "classification"])
def test_scan_says_what_load_says_about_npz_and_idx(arrays, task):
    assert outcome(scan_file, npz_bytes(**arrays), "npz", task=task) == outcome(load_file, npz_bytes(**arrays), "npz",
                                                                                 task=task)
    images = np.arange(5 * 2 * 3).reshape(5, 2, 3)
    for labels in (np.array([0, 1, 2, 1, 0]), np.zeros(5), np.array([0, 1, 0, 1])):
        pair = gzip.compress(idx_bytes(images)), idx_bytes(labels)
        assert outcome(scan_file, pair[0], "idx", labels=pair[1], task=task) == outcome(
            load_file, pair[0], "idx", labels=pair[1], task=task)


def test_more_distinct_labels_than_any_output_layer_are_refused():
    text = "a,y\n" + "".join(f"{i},c{i}\n" for i in range(MAX_CLASSES + 1))
    for fn in (scan_file, load_file):
        assert f"more than {MAX_CLASSES:,} distinct labels" in error_of(fn, text.encode(), "csv")


# --- prepare -----------------------------------------------------------------------------------

def test_stratified_splits_keep_class_proportions():
    raw = classification({0: 180, 1: 20})
    data = prepare(raw, DatasetSpec(id="d", test_split=0.25, validation_split=0.1, seed=5))
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (130, 20, 50)
    for y in (data.y_train, data.y_val, data.y_test):
        assert abs(np.mean(y == 1) - 0.1) <= 1 / len(y)
    rows = np.concatenate([data.x_train, data.x_val, data.x_test])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, raw.x))  # a partition: nothing lost or repeated


def test_splits_are_determined_by_the_seed():
    raw = load_builtin(DatasetSpec(builtin="iris"))
    a, b = (prepare(raw, DatasetSpec(builtin="iris", seed=7)) for _ in range(2))
    c = prepare(raw, DatasetSpec(builtin="iris", seed=8))
    assert np.array_equal(a.x_test, b.x_test) and not np.array_equal(a.x_test, c.x_test)
    diabetes = load_builtin(DatasetSpec(builtin="diabetes"))
    r1, r2 = (prepare(diabetes, DatasetSpec(builtin="diabetes", seed=7)) for _ in range(2))
    assert np.array_equal(r1.y_test, r2.y_test) and r1.y_test.dtype == np.float64


def test_unshuffled_split_holds_out_the_last_rows_and_zero_splits_are_empty():
    raw = classification({0: 10, 1: 10})
    data = prepare(raw, DatasetSpec(id="d", test_split=0.2, validation_split=0.1, shuffle=False))
    assert np.array_equal(data.x_train, raw.x[:14]) and np.array_equal(data.x_val, raw.x[14:16])
    assert np.array_equal(data.x_test, raw.x[16:])
    gates = prepare(load_builtin(DatasetSpec(builtin="xor")), DatasetSpec(builtin="xor"))
    assert gates.x_train.shape == (4, 2) and gates.x_test.shape == (0, 2) and gates.x_val.shape == (0, 2)
    assert gates.y_test.shape == (0,) and gates.y_test.dtype == np.int64


def test_split_errors_say_what_to_change():
    four = classification({0: 2, 1: 2})
    msg = error_of(prepare, four, DatasetSpec(id="d", test_split=0.5, validation_split=0.45))
    assert "leave no training samples out of 4; lower them" in msg
    three = classification({"a": 20, "b": 20, "c": 20})
    msg = error_of(prepare, three, DatasetSpec(id="d", test_split=0.01))
    assert "the test split has 1 sample, too few to hold one of each of the 3 classes" in msg
    assert "raise test_split to at least 0.05" in msg
    msg = error_of(prepare, three, DatasetSpec(id="d", test_split=0.5, validation_split=0.46))
    assert "the train split has 2 samples, too few to hold one of each of the 3 classes; lower test_split" in msg
    rare = classification({"a": 10, "b": 1})
    msg = error_of(prepare, rare, DatasetSpec(id="d", test_split=0.25))
    assert "class 'b' has 1 sample, too few to stratify into 2 splits" in msg
    # Unshuffled splits are not stratified, so the same data splits without complaint.
    assert len(prepare(rare, DatasetSpec(id="d", test_split=0.25, shuffle=False)).y_test) == 3


def test_standard_scaler_is_fitted_on_the_training_split_only():
    raw = load_builtin(DatasetSpec(builtin="wine"))
    before = raw.x.copy()
    data = prepare(raw, DatasetSpec(builtin="wine", scale="standard", seed=1))
    assert np.array_equal(raw.x, before)  # the caller's data is not scaled in place
    plain = prepare(raw, DatasetSpec(builtin="wine", seed=1))  # same split, unscaled
    assert np.allclose(data.preprocessing.offset, plain.x_train.mean(axis=0))
    assert np.allclose(data.preprocessing.scale, plain.x_train.std(axis=0))
    assert np.allclose(data.x_train.mean(axis=0), 0) and np.allclose(data.x_train.std(axis=0), 1)
    assert not np.allclose(data.x_test.mean(axis=0), 0)  # the test split was not used to fit
    assert np.allclose(data.preprocessing.transform(plain.x_test), data.x_test)


def test_minmax_scaler_maps_train_to_unit_range():
    data = prepare(load_builtin(DatasetSpec(builtin="iris")), DatasetSpec(builtin="iris", scale="minmax", seed=2))
    assert np.allclose(data.x_train.min(axis=0), 0) and np.allclose(data.x_train.max(axis=0), 1)


@pytest.mark.parametrize("scaler", ["standard", "minmax"])
def test_constant_columns_are_left_unscaled(scaler):
    raw = load_builtin(DatasetSpec(builtin="digits"))
    data = prepare(raw, DatasetSpec(builtin="digits", scale=scaler, seed=0))
    pre = data.preprocessing
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_test).all()
    assert (pre.offset[0], pre.scale[0]) == (0.0, 1.0)  # pixel_0_0 is blank in every digit
    offset, scale = fit_scaler(np.array([[5.0, 1.0], [5.0, 3.0]]), scaler)
    assert (offset[0], scale[0]) == (0.0, 1.0) and scale[1] > 0


@pytest.mark.parametrize("labels, classes", [
    ([4, 2, 2, 4, 4, 2, 4, 2], [2, 4]),
    (["dog", "cat", "cat", "dog", "emu", "emu"], ["cat", "dog", "emu"]),
])
def test_labels_round_trip_through_class_indices(labels, classes):
    raw = RawData(x=np.arange(len(labels), dtype=np.float64)[:, None], y=np.array(labels), task="classification",
                  feature_names=["x"], target_names=["y"])
    data = prepare(raw, DatasetSpec(id="d", test_split=0.0, shuffle=False))
    assert data.preprocessing.classes == classes and data.y_train.dtype == np.int64
    assert all(type(c) is type(classes[0]) for c in data.preprocessing.classes)  # JSON scalars, not numpy's
    assert [data.preprocessing.classes[i] for i in data.y_train] == labels


def test_csv_labels_2_and_4_become_classes_2_and_4():
    raw = csv_raw("a,y\n1,2\n2,4\n3,2\n4,4\n5,2\n6,4\n7,2\n8,4\n")
    data = prepare(raw, DatasetSpec(id="d", test_split=0.25, seed=0))
    assert data.preprocessing.classes == [2, 4] and data.n_classes == 2
    assert set(data.y_train.tolist()) == {0, 1}


def test_importing_the_spec_does_not_import_scikit_learn():
    code = "import sys, trainyard.core.spec, trainyard.core.datasets; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_nothing_held_out_keeps_the_rows_in_their_order():
    # The notes' scikit-learn XOR result depends on row order; with no split there is no reason to permute.
    raw = load_builtin(DatasetSpec(builtin="xor"))
    data = prepare(raw, DatasetSpec(builtin="xor", test_split=0.0, seed=20))
    assert data.x_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert data.y_train.tolist() == [0, 1, 1, 0]
