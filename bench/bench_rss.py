"""Issue 12's memory figure: the API process's peak RSS through every hostile upload, spec and predict (run by hand).

    .venv/bin/python bench/bench_rss.py                # embedded: SQLite + file broker
    .venv/bin/python bench/bench_rss.py --postgres     # PostgreSQL + Redis

A real API (one gunicorn gevent worker), a worker and the reconciler on loopback. Each
input the red team sent is sent once, in order; after each the bench prints the answer's
status and size and the API worker's peak RSS so far (VmHWM). Goal: <= 500 MB throughout.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from bench_hostile import peak_rss_mb, service  # noqa: E402


def npz_zeros(rows: int, cols: int) -> bytes:
    """A compressed NPZ of uint8 zeros written member by member (never the whole array in this process)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, shape in (("X", (rows, cols)), ("y", (rows,))):
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
            with z.open(f"{name}.npy", "w", force_zip64=True) as member:
                member.write(header.getvalue())
                chunk = bytes(1 << 24)
                left = int(np.prod(shape))
                while left:
                    member.write(chunk[:min(left, len(chunk))])
                    left -= min(left, len(chunk))
    return buf.getvalue()


def gzip_rows(header: bytes, row: bytes, total: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as z:
        z.write(header)
        block = row * (1 << 20 // len(row))
        for _ in range(total // len(block)):
            z.write(block)
    return out.getvalue()


def idx_gz(n: int, rows: int, cols: int) -> tuple[bytes, bytes]:
    images = gzip_rows(b"\x00\x00\x08\x03" + b"".join(v.to_bytes(4, "big") for v in (n, rows, cols)),
                       b"\x00" * 64, n * rows * cols)
    labels = b"\x00\x00\x08\x01" + n.to_bytes(4, "big") + bytes(n)
    return images, labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with service(args.postgres, user="mallory") as (url, _port, token, procs):
        auth = {"Authorization": f"Bearer {token}"}

        def report(what: str, r: requests.Response) -> None:
            print(f"  {what:58s} -> {r.status_code} ({len(r.content):>10,} bytes)  peak RSS "
                  f"{peak_rss_mb(procs[0].pid):6.0f} MB", flush=True)

        def upload(what: str, data: bytes, fmt: str, labels: bytes | None = None) -> requests.Response:
            files = {"file": ("f", data)} | ({"labels": ("l", labels)} if labels else {})
            r = requests.post(url + "/datasets", files=files, data={"name": what[:40], "format": fmt},
                              headers=auth, timeout=600)
            report(f"upload {what} ({len(data) / 2**20:.2f} MiB sent)", r)
            return r

        layout = "PostgreSQL + Redis" if args.postgres else "embedded SQLite + file broker"
        print(f"{layout}; API worker peak RSS after start: {peak_rss_mb(procs[0].pid):.0f} MB")
        upload("gzip CSV, 150 MiB of 0,0 rows", gzip_rows(b"a,label\n", b"0,0\n1,1\n", 150 << 20), "csv")
        upload("NPZ of 120M x 4 uint8 zeros", npz_zeros(120_000_000, 4), "npz")
        images, labels = idx_gz(4_000_000, 8, 8)
        upload("IDX.gz of 4M x 8 x 8", images, "idx", labels)
        upload("CSV with 60,000 columns x 4 rows", (",".join(f"c{i}" for i in range(60_000)) + ",label\n"
                                                    + ("0," * 60_000 + "1\n") * 4).encode(), "csv")
        upload("CSV that is one 200 MiB line", b"a," * (100 << 20) + b"\n", "csv")
        big = {"name": "x", "dataset": {"builtin": "xor"}, "model": {"layers": [{"type": "dense", "units": 1}]},
               "backend_options": {f"k{i}": 1 for i in range(1_000_000)}}
        report("spec of 12 MB with 1M keys", requests.post(url + "/jobs", json=big, headers=auth, timeout=600))
        layers = [{"type": "dense", "units": 1, "activation": "relu"}] * 100_000
        report("spec of 100,000 layers", requests.post(url + "/jobs", headers=auth, timeout=600, json={
            "dataset": {"builtin": "xor"}, "model": {"layers": layers}, "training": {"epochs": 5}}))
        csv = "x,label\n" + "".join(f"{i % 97},c{i // 2}\n" for i in range(6000))
        ds = upload("CSV of 3,000 classes x 2 rows", csv.encode(), "csv").json()["id"]
        spec = {"dataset": {"id": ds, "test_split": 0.5},
                "model": {"layers": [{"type": "dense", "units": 3000, "activation": "softmax"}]},
                "training": {"epochs": 1}}
        job = requests.post(url + "/jobs", json=spec, headers=auth, timeout=60).json()
        for _ in range(600):
            status = requests.get(f"{url}/jobs/{job['id']}", headers=auth, timeout=30).json()["status"]
            if status in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.5)
        report(f"GET a 3,000-class job ({status})", requests.get(f"{url}/jobs/{job['id']}", headers=auth, timeout=60))
        for rows in (333, 10_000):
            report(f"predict {rows:,} rows on the 3,000-class model", requests.post(
                f"{url}/jobs/{job['id']}/predict", json={"inputs": [[0]] * rows}, headers=auth, timeout=600))
        print(f"API worker peak RSS over the whole run: {peak_rss_mb(procs[0].pid):.0f} MB (goal <= 500 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
