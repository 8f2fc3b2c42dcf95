"""Hostile payloads for the security tests: pickles with canaries, crafted .keras / .h5 / skops / npz files, bombs.

Every payload that could run code does one visible thing if it ever runs: it creates its canary file.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import marshal
import pickle
import re
import struct
import zipfile
from pathlib import Path

import numpy as np

from trainyard.store.db import session_scope
from trainyard.store.blobs import put_blob
from trainyard.store.models import Artifact

PUBLIC_ENDPOINTS = {"health.get_health", "docs.get_openapi", "docs.get_docs", "docs.get_home",
                    "metrics.get_metrics"}
TRAVERSALS = ["../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
              "/etc/passwd", "..\\..\\..\\windows\\win.ini", "....//....//etc/passwd", "%252e%252e%252fetc%252fpasswd",
              "..", ".", "~root", "file:///etc/passwd", "\x00../../etc/passwd"]


class Canary:
    """Unpickling this creates `path` (builtins.open in `w` mode): proof that pickle ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def pickle_payload(canary: Path) -> bytes:
    return pickle.dumps({"X": Canary(canary), "y": [0, 1, 0, 1]})


def _npz(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def npz_object_array(canary: Path) -> bytes:
    """A well-formed NPZ whose X is an object array: loading it with pickle allowed would create the canary."""
    x = np.empty((4, 2), dtype=object)
    x[:] = Canary(canary)
    return _npz({"X.npy": _npy(x), "y.npy": _npy(np.array([0, 1, 0, 1]))})


def npz_member_is_a_pickle(canary: Path) -> bytes:
    """An NPZ whose X.npy member is a bare pickle, not an .npy array."""
    return _npz({"X.npy": pickle_payload(canary), "y.npy": _npy(np.array([0, 1, 0, 1]))})


def npz_bomb(rows: int = 1 << 17) -> bytes:
    """Compressed NPZ: a few KB that inflate to rows*16 bytes of zeros."""
    buf = io.BytesIO()
    np.savez_compressed(buf, X=np.zeros((rows, 2)), y=np.tile([0, 1], rows // 2))
    return buf.getvalue()


def npz_lying_sizes() -> bytes:
    """A zip whose X.npy entry claims 200 bytes but whose deflate stream inflates to 8 MB (header and directory lie)."""
    big = _npy(np.zeros((1 << 19, 2)))
    data = bytearray(_npz({"X.npy": big, "y.npy": _npy(np.arange(4))}, zipfile.ZIP_DEFLATED))
    real = struct.pack("<I", len(big))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        at = data.find(signature)
        assert data[at + offset:at + offset + 4] == real
        data[at + offset:at + offset + 4] = struct.pack("<I", 200)
    return bytes(data)


def npz_broken_streams() -> list[bytes]:
    """NPZs whose X.npy entry names an unknown compression method, or whose deflate stream is damaged."""
    good = _npz({"X.npy": _npy(np.arange(4000.0).reshape(2000, 2)), "y.npy": _npy(np.arange(2000) % 2)},
                zipfile.ZIP_DEFLATED)
    method = bytearray(good)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = method.find(signature)
        method[at + offset:at + offset + 2] = struct.pack("<H", 99)
    damaged = bytearray(good)
    damaged[200:260] = bytes(60)
    return [bytes(method), bytes(damaged)]


def npy_header_lies(shape: tuple[int, ...]) -> bytes:
    """An .npy member whose header declares `shape` of float64 but holds 64 bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def npz_header_lies() -> bytes:
    return _npz({"X.npy": npy_header_lies((10 ** 7, 10 ** 6)), "y.npy": _npy(np.arange(4))})


def gzip_bomb(text_row: bytes = b"0,0,0\n", size: int = 8 << 20, head: bytes = b"a,b,label\n") -> bytes:
    return gzip.compress(head + text_row * (size // len(text_row)), compresslevel=9)


def idx_header(dims: tuple[int, ...], code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(int(n).to_bytes(4, "big") for n in dims)


def idx(array: np.ndarray, code: int = 0x08, dtype: str = ">u1") -> bytes:
    return idx_header(array.shape, code) + array.astype(dtype).tobytes()


# --- crafted model files -----------------------------------------------------------------------------------


def _lambda_code(canary: Path) -> str:
    """Keras's serialised Lambda function: marshalled bytecode that creates the canary when called."""
    fn = eval(f"lambda x: (__import__('pathlib').Path({str(canary)!r}).touch(), x)[1]")  # noqa: S307 (payload)
    return base64.b64encode(marshal.dumps(fn.__code__)).decode()


def _dense(name: str, activation) -> dict:
    return {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
            "config": {"name": name, "units": 1, "activation": activation, "use_bias": True}}


def _input() -> dict:
    return {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
            "config": {"batch_shape": [None, 2], "dtype": "float32", "name": "input"}}


def keras_configs(canary: Path) -> dict[str, dict]:
    """Model configs in the shape of Keras 3's config.json, each carrying one known attack."""
    lam = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
           "config": {"name": "evil", "function": {"class_name": "__lambda__",
                                                   "config": {"code": _lambda_code(canary), "defaults": None,
                                                              "closure": None}},
                      "output_shape": None, "arguments": {}}}
    os_function = {"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}
    unsafe = {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization",
              "registered_name": "function"}
    custom = {"module": None, "class_name": "Evil", "registered_name": "Custom>Evil", "config": {}}

    def model(*layers):
        return {"module": "keras", "class_name": "Sequential", "registered_name": None,
                "config": {"name": "m", "layers": [_input(), *layers]}}

    return {
        "lambda_layer": model(lam, _dense("out", "sigmoid")),  # CVE-2024-3660
        "activation_os_system": model(_dense("out", os_function)),  # CVE-2025-1550: module path in a config
        "activation_string_os_system": model(_dense("out", "os.system")),
        "enable_unsafe_deserialization": model(unsafe, _dense("out", "sigmoid")),  # CVE-2025-9906
        "custom_object": model(custom, _dense("out", "sigmoid")),
        "module_path_class": model({**_dense("out", "sigmoid"), "module": "os"}),
        "class_name_list": model({**_dense("out", "sigmoid"), "class_name": ["Dense"]}),
        "import_config": model({**_dense("out", "sigmoid"), "class_name": "__import__", "module": "builtins",
                                "config": "os"}),
    }


def keras_file(config: dict) -> bytes:
    """A `.keras` archive as trainyard writes one (config.json, metadata.json, weights, trainyard.json)."""
    meta = {"format": "trainyard-keras", "format_version": 1,
            "preprocessing": {"task": "classification", "n_features": 2, "classes": [0, 1]}, "spec": {}}
    return _npz({"config.json": json.dumps(config).encode(),
                 "metadata.json": json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01"}).encode(),
                 "model.weights.h5": b"", "trainyard.json": json.dumps(meta).encode()})


def h5_model(canary: Path) -> bytes:
    """A legacy Keras HDF5 model file whose model_config holds a Lambda layer."""
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(keras_configs(canary)["lambda_layer"])
        f.create_group("model_weights")
    return buf.getvalue()


def skops_files(canary: Path) -> dict[str, bytes]:
    """skops archives whose schema names types outside the trusted list."""
    os_system = {"__class__": "system", "__module__": "os", "__loader__": "TypeNode", "__id__": 1}
    reduce = {"__class__": "Canary", "__module__": "tests.support.hostile", "__loader__": "ReduceNode", "__id__": 2,
              "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                          "content": [str(canary)]}}
    listed = {"__class__": ["MLPClassifier"], "__module__": "sklearn.neural_network._multilayer_perceptron",
              "__loader__": "ObjectNode", "__id__": 3}
    out = {}
    for name, node in (("os_system", os_system), ("reduce", reduce), ("class_list", listed)):
        schema = {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "__id__": 0,
                  "content": {"estimator": node}, "protocol": 2, "_skops_version": "0.16.0"}
        out[name] = _npz({"schema.json": json.dumps(schema).encode(), "evil.npy": pickle_payload(canary)})
    return out


def npz_models(canary: Path) -> dict[str, bytes]:
    """Numpy-engine model files: a pickled header, a pickled weight, a header that declares 8 TiB."""
    obj = np.empty((), dtype=object)
    obj[()] = Canary(canary)
    header = json.dumps({"format": "trainyard-npz", "format_version": 1, "spec": {}, "n_features": 2,
                         "dtype": "float64", "layers": [{"type": "dense", "units": 1}], "versions": {},
                         "preprocessing": {"task": "classification", "n_features": 2, "classes": [0, 1]}})
    weights = {"layers.0.bias.npy": _npy(np.zeros(1))}
    return {
        "pickled_header": _npz({"trainyard.npy": _npy(obj)}),
        "pickled_weight": _npz({"trainyard.npy": _npy(np.array(header)), "layers.0.kernel.npy": _npy(
            np.array([Canary(canary), Canary(canary)], dtype=object).reshape(2, 1)), **weights}),
        "header_declares_8_tib": _npz({"trainyard.npy": _npy(np.array(header)),
                                       "layers.0.kernel.npy": npy_header_lies((2, 1 << 42)), **weights}),
        "bare_pickle": pickle_payload(canary),
    }


# --- the database, as an attacker with write access (or a failing disk) would change it ------------------------


def replace_model_blob(api, job_id: str, data: bytes) -> None:
    """Point a job's model artifact at new, correctly hashed bytes (the sha256 check cannot notice)."""
    with session_scope(api.sessions) as s:
        sha = put_blob(session=s, data=data)
        s.get(Artifact, (job_id, "model")).blob_sha256 = sha


def url_for_rule(rule, values: dict[str, str]) -> str:
    """The rule's path with each `<converter:name>` replaced by values[name]."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values[m.group(1)], rule.rule)
