"""Peak memory and CPU of the API on hostile dataset uploads (red-team findings #33–40, #46; run by hand).

    .venv/bin/python bench/bench_uploads.py                      # every case, this checkout
    .venv/bin/python bench/bench_uploads.py --root /tmp/before   # the same on another checkout (a `git archive`)
    .venv/bin/python bench/bench_uploads.py --case npz_120m --cap-gib 6

Each case is uploaded through the real app (Flask's test client, SQLite in a scratch folder, the default
limits unless the case sets its own) in a fresh interpreter, which reports the answer, the growth of its
peak RSS (`ru_maxrss` after the upload minus before it) and the CPU seconds the upload took. The child runs
under an address-space cap (`--cap-gib`): a case that would need more ends as "over the cap", not as an
OOM kill of something else on the machine. Payloads are built once, streamed, in a scratch folder.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def _gzip_rows(path: Path, head: bytes, row: bytes, size: int) -> None:
    """`head` then `row` repeated up to `size` bytes, gzip'd, written without holding the text."""
    block = row * (MIB // len(row))
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(head)
        for _ in range(size // len(block)):
            f.write(block)


def _bytes(f, n: int, pattern: bytes) -> None:
    """Write `pattern` repeated to `n` bytes in 16 MiB pieces (never the whole array at once)."""
    block = pattern * (16 * MIB // len(pattern))
    while n:
        f.write(block[:min(n, len(block))])
        n -= min(n, len(block))


def _npz_zeros(path: Path, rows: int, cols: int) -> None:
    """`np.savez_compressed` of uint8 zeros X (rows, cols) and labels y = 0, 1, 0, 1, …, written in pieces."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, shape, pattern in (("X.npy", (rows, cols), b"\0"), ("y.npy", (rows,), b"\0\1")):
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
            with z.open(name, "w", force_zip64=True) as f:
                f.write(header.getvalue())
                _bytes(f, int(np.prod(shape)), pattern)


def _idx_gz(path: Path, dims: tuple[int, ...], pattern: bytes = b"\0") -> None:
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims))
        _bytes(f, int(np.prod(dims)), pattern)


def _wide_csv(path: Path, columns: int) -> None:
    header = ",".join(f"c{i}" for i in range(columns)) + ",label\n"
    rows = "".join(",".join(str((r + i) % 10) for i in range(columns)) + f",{r % 2}\n" for r in range(4))
    path.write_text(header + rows)


def _plain_csv(path: Path, size: int) -> None:
    """A plain CSV of `size` bytes: 8 float features and a class label, like a real export."""
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write(",".join(f"f{i}" for i in range(8)) + ",label\n")
        while f.tell() < size:
            block = rng.normal(size=(10_000, 8))
            f.write("".join(",".join(f"{v:.6f}" for v in row) + f",{int(row[0] > 0)}\n" for row in block))


# name → (builder, form fields, labels builder or None, settings changes)
CASES = {
    "csv_gz_50mib": (lambda p: _gzip_rows(p, b"a,label\n", b"0,0\n1,1\n", 50 * MIB), {"format": "csv"}, None, {}),
    "csv_gz_150mib": (lambda p: _gzip_rows(p, b"a,label\n", b"0,0\n1,1\n", 150 * MIB), {"format": "csv"}, None, {}),
    "npz_64m": (lambda p: _npz_zeros(p, 64_000_000, 4), {"format": "npz"}, None, {}),
    "npz_120m": (lambda p: _npz_zeros(p, 120_000_000, 4), {"format": "npz"}, None, {}),
    "idx_gz_4m": (lambda p: _idx_gz(p, (4_000_000, 8, 8)), {"format": "idx"},
                  lambda p: _idx_gz(p, (4_000_000,), b"\0\1"), {}),
    "csv_40k_columns": (lambda p: _wide_csv(p, 40_000), {"format": "csv"}, None, {}),
    "csv_60k_columns": (lambda p: _wide_csv(p, 60_000), {"format": "csv"}, None, {}),
    "csv_17mb": (lambda p: _plain_csv(p, 17_700_000), {"format": "csv"}, None, {}),
}

CHILD = r"""
import io, json, resource, sys, time
cap, home, payload, labels, form, changes = sys.argv[1:7]
resource.setrlimit(resource.RLIMIT_AS, (int(cap), int(cap)))
import numpy
import trainyard.core
from trainyard.api.app import create_app
from trainyard.store.db import make_engine, session_scope, make_sessionmaker
from trainyard.store.migrate import upgrade
from trainyard.store.settings import Settings
from trainyard.store.tokens import create_token
settings = Settings(home=home, **json.loads(changes))
upgrade(settings)
engine = make_engine(settings)
app = create_app(settings, engine=engine)
with session_scope(make_sessionmaker(engine)) as s:
    token, _ = create_token(session=s, user_name="mallory")
client = app.test_client()
fields = {"name": "hostile", **json.loads(form), "file": (io.BytesIO(open(payload, "rb").read()), "data")}
if labels:
    fields["labels"] = (io.BytesIO(open(labels, "rb").read()), "labels")
client.get("/api/v1/catalog", headers={"Authorization": "Bearer " + token})  # warm every import
before, cpu = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.process_time()
try:
    r = client.post("/api/v1/datasets", data=fields, content_type="multipart/form-data",
                    headers={"Authorization": "Bearer " + token})
    status, body = r.status_code, r.get_json()
except MemoryError:
    status, body = "over the cap", None
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
detail = None
if isinstance(body, dict) and status != 201:
    detail = body.get("errors", [{}])[0].get("msg") or body.get("detail")
print(json.dumps({"status": status, "detail": (detail or "")[:200], "rss_before_mib": before // 1024,
                  "peak_growth_mib": (after - before) // 1024, "cpu_s": round(time.process_time() - cpu, 1),
                  "code": trainyard.core.__file__}))
"""


def run_case(name: str, root: Path, scratch: Path, cap: int) -> dict:
    build, form, build_labels, changes = CASES[name]
    payload, labels = scratch / f"{name}.bin", scratch / f"{name}.labels"
    if not payload.exists():
        build(payload)
    if build_labels and not labels.exists():
        build_labels(labels)
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PYTHONPATH": str(root)}
        out = subprocess.run([sys.executable, "-c", CHILD, str(cap), home, str(payload),
                              str(labels) if build_labels else "", json.dumps(form), json.dumps(changes)],
                             cwd=root, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return {"status": f"child exited {out.returncode}", "detail": out.stderr.strip().splitlines()[-1:]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["upload_kib"] = (payload.stat().st_size + (labels.stat().st_size if build_labels else 0)) // 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="a case (default: all)")
    parser.add_argument("--cap-gib", type=float, default=6.0, help="address-space cap of the measured process")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "trainyard-bench-uploads")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    for name in args.case or list(CASES):
        result = run_case(name, args.root.resolve(), args.scratch, int(args.cap_gib * (1 << 30)))
        print(json.dumps({"case": name, **result}), flush=True)


if __name__ == "__main__":
    main()
