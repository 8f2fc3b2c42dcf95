"""Bounded work before limits (issue 12, item 3; red-team findings #33–40, #43, #46): a small hostile upload is
refused from its headers, or at the first row past a limit, in memory far below what its data would take.

Each payload is the red team's, built in pieces (never held decompressed). Peaks are `tracemalloc`'s (numpy's
allocations are traced) around the request or the loader call only.
"""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from trainyard.core.datasets import Limits, describe, load_file, scan_file
from trainyard.core.errors import DatasetError

from tests.support.api import problem

MIB = 1 << 20
PEAK = 100 * MIB  # the bound every hostile upload stays under (the red team saw 2.2 to over 5 GB)


def deflated(head: bytes, pattern: bytes, size: int, wbits: int = 16 + zlib.MAX_WBITS) -> bytes:
    """`head` then `pattern` repeated to `size` bytes, compressed (gzip by default) piece by piece."""
    z = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = pattern * (MIB // len(pattern))
    out = [z.compress(head)]
    for start in range(0, size, len(block)):
        out.append(z.compress(block[:min(len(block), size - start)]))
    return b"".join(out) + z.flush()


def npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def npz_of_zeros(rows: int, cols: int) -> bytes:
    """`np.savez_compressed(X=np.zeros((rows, cols), np.uint8), y=0, 1, 0, 1…)`, built without the arrays."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, shape, pattern in (("X.npy", (rows, cols), b"\0"), ("y.npy", (rows,), b"\0\1")):
            with z.open(name, "w", force_zip64=True) as f:
                f.write(npy_header(shape))
                block, total = pattern * (8 * MIB // len(pattern)), int(np.prod(shape))
                for start in range(0, total, len(block)):
                    f.write(block[:min(len(block), total - start)])
    return buf.getvalue()


def idx_header(dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


@pytest.fixture(scope="module")
def payloads() -> dict[str, bytes]:
    """The red team's uploads (#37–40): 0.23 MB, 0.58 MB and 0.25 MB that inflate to 150 MiB, 480 MB, 256 MB."""
    return {
        "csv_gz": deflated(b"a,label\n", b"0,0\n1,1\n", 150 * MIB),
        "npz": npz_of_zeros(120_000_000, 4),
        "idx_gz": deflated(idx_header((4_000_000, 8, 8)), b"\0", 4_000_000 * 64),
        "idx_labels_gz": deflated(idx_header((4_000_000,)), b"\0\1", 4_000_000),
    }


def peak_of(fn, *args, **kwargs):
    """(what `fn` returned, or the DatasetError it raised; the most bytes traced meanwhile)."""
    tracemalloc.start()
    try:
        try:
            result = fn(*args, **kwargs)
        except DatasetError as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def upload(caller, data: bytes, fmt: str, labels: bytes | None = None, **form):
    """POST /datasets with the body encoded in memory (the test client spools bodies over 500 KB to a temporary
    file it never closes)."""
    fields = {"name": "hostile", "format": fmt, **form, "file": FileStorage(io.BytesIO(data), "data")}
    if labels is not None:
        fields["labels"] = FileStorage(io.BytesIO(labels), "labels")
    boundary, body = encode_multipart(fields)
    return caller.post("/datasets", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def refused_file(r, *fragments: str) -> str:
    """A 422 whose one error is at `file` and says each fragment (the setting among them); nothing stored."""
    body = problem(r, 422)
    assert [e["loc"] for e in body["errors"]] == ["file"], body
    msg = body["errors"][0]["msg"]
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


# --- through the API, on both databases ------------------------------------------------------------------


def test_gzip_csv_stops_at_the_first_row_past_the_limit(limited_both, payloads):
    api = limited_both(max_samples_x_features=200_000)
    r, peak = peak_of(upload, api.alice, payloads["csv_gz"], "csv")
    refused_file(r, "at least 200,001 samples x 1 features is over the limit of 200,000 (max_samples_x_features)")
    assert peak < PEAK, f"{peak / MIB:.0f} MiB traced refusing a 0.23 MB gzip CSV"
    assert api.alice.get("/datasets").get_json()["items"] == []


def test_npz_shape_is_refused_from_its_header(api_both, payloads):
    r, peak = peak_of(upload, api_both.alice, payloads["npz"], "npz")
    refused_file(r, "120,000,000 samples x 4 features is over the limit of 200,000,000 (max_samples_x_features)")
    assert peak < 10 * MIB, f"{peak / MIB:.0f} MiB traced refusing a 0.58 MB NPZ from its header"


def test_a_wide_npz_is_refused_from_its_header_before_any_column_is_named(api_both):
    """4 x 20,000,000 uint8 is within max_samples_x_features, but naming 20M columns took 1.4 GB (and 249 MB of
    JSON in every dataset list): max_features refuses it from the header."""
    buf = io.BytesIO()
    np.savez_compressed(buf, X=np.zeros((4, 20_000_000), np.uint8), y=np.zeros(4, np.uint8))
    r, peak = peak_of(upload, api_both.alice, buf.getvalue(), "npz")
    refused_file(r, "20,000,000 features is over the limit of 100,000 (max_features)")
    assert peak < 10 * MIB, f"{peak / MIB:.0f} MiB traced refusing a 78 KB NPZ from its header"


def test_idx_shape_is_refused_from_its_header(api_both, payloads):
    r, peak = peak_of(upload, api_both.alice, payloads["idx_gz"], "idx", payloads["idx_labels_gz"])
    refused_file(r, "4,000,000 samples x 64 features is over the limit of 200,000,000 (max_samples_x_features)")
    assert peak < 10 * MIB, f"{peak / MIB:.0f} MiB traced refusing a 0.25 MB IDX from its header"


def test_decompression_stops_at_max_decompressed_bytes(limited_both):
    api = limited_both(max_decompressed_bytes=8 * MIB)
    bomb = deflated(b"a,label\n", b"0" * 1000 + b",1\n", 64 * MIB)  # long cells: few rows to parse on the way
    r, peak = peak_of(upload, api.alice, bomb, "csv")
    refused_file(r, "decompresses to more than the 8 MiB limit (max_decompressed_bytes)")
    assert peak < 32 * MIB
    # An IDX header that declares more than the limit is refused before any of its data is inflated.
    images = deflated(idx_header((200_000, 8, 8)), b"\0", 200_000 * 64)
    r, peak = peak_of(upload, api.alice, images, "idx", deflated(idx_header((200_000,)), b"\0\1", 200_000))
    refused_file(r, "declares shape (200000, 8, 8)", "more than the 8 MiB limit (max_decompressed_bytes)")
    assert peak < 4 * MIB


def test_a_uint8_upload_within_the_limits_is_never_copied_to_float64(api_both):
    """20M x 4 uint8 (80 MB; 640 MB as float64) is accepted while the API holds a few MB of it at a time."""
    data = npz_of_zeros(20_000_000, 4)
    r, peak = peak_of(upload, api_both.alice, data, "npz")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["n_samples"], body["n_features"], body["n_classes"], body["classes"]) == (20_000_000, 4, 2, [0, 1])
    assert peak < 64 * MIB, f"{peak / MIB:.0f} MiB traced accepting 80 MB of uint8 features"


def test_a_one_line_csv_is_refused_after_a_bounded_line(api):
    """#35: one 200 MiB line used to be read whole (+230 MB) before the csv module refused its field."""
    line = deflated(b"a,label\n", b"0", 200 * MIB)
    r, peak = peak_of(upload, api.alice, line, "csv")
    refused_file(r, "the CSV file has a row longer than 16,777,216 characters")
    assert peak < PEAK


@pytest.mark.timeout(30)  # a hang guard, not a measurement: the quadratic check took ~50 s on 60k names
def test_a_60k_column_header_is_checked_in_linear_time(api):
    names = [f"c{i}" for i in range(60_000)]
    rows = "".join(",".join(str((r + i) % 7) for i in range(60_000)) + f",{r % 2}\n" for r in range(4))
    r = upload(api.alice, (",".join(names) + ",label\n" + rows).encode(), "csv")
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["n_features"], r.get_json()["n_samples"]) == (60_000, 4)
    repeated = names[:-2] + ["c7", "c59"]
    r = upload(api.alice, (",".join(repeated) + ",label\n" + rows).encode(), "csv")
    refused_file(r, "the CSV header repeats column names: 'c59', 'c7'")


def test_form_limits_say_which_limit_was_passed(api_both):
    """#43: werkzeug's form limits (parts, field size) were answered as if the body passed max_upload_bytes."""
    fields = {f"extra{i}": "x" for i in range(5000)}
    detail = problem(upload(api_both.alice, b"a,y\n", "csv", **fields), 413)["detail"]
    assert "more than 1,000 parts" in detail and "max_upload_bytes" not in detail, detail
    detail = problem(upload(api_both.alice, b"a,y\n", "csv", name="n" * (5 * MIB)), 413)["detail"]
    assert "larger than 500,000 bytes" in detail and "max_upload_bytes" not in detail, detail


# --- the loaders the API and the worker use --------------------------------------------------------------


def test_the_scan_refuses_each_payload_before_materialising_it(payloads):
    limits = Limits(max_cells=200_000_000, cells_setting="max_samples_x_features")
    cases = [
        (payloads["csv_gz"], "csv", None, Limits(max_cells=200_000), "at least 200,001 samples x 1 features"),
        (payloads["npz"], "npz", None, limits, "120,000,000 samples x 4 features"),
        (payloads["idx_gz"], "idx", payloads["idx_labels_gz"], limits, "4,000,000 samples x 64 features"),
    ]
    for data, fmt, labels, lim, fragment in cases:
        for fn in (scan_file, load_file):  # the worker's loader checks the same headers first
            error, peak = peak_of(fn, data, fmt, labels=labels, limits=lim)
            assert isinstance(error, DatasetError) and fragment in str(error), (fn.__name__, fmt, error)
            assert peak < PEAK, f"{fn.__name__} {fmt}: {peak / MIB:.0f} MiB traced"


def test_npz_types_outside_the_allow_list_are_refused_from_the_header():
    def npz(x_descr: str, y_descr: str = "|u1", rows: int = 1_000_000) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, shape, descr in (("X.npy", (rows, 2), x_descr), ("y.npy", (rows,), y_descr)):
                header = npy_header(shape, descr)
                z.writestr(name, header + bytes(int(np.prod(shape)) * np.dtype(descr).itemsize))
        return buf.getvalue()

    cases = [(npz("<c16"), "features must be numbers, not complex128"),
             (npz("<M8[s]"), "features must be numbers, not datetime64[s]"),
             (npz("<f8", "<M8[s]"), "regression targets must be numbers; this target holds datetime64[s] values")]
    for data, fragment in cases:
        error, peak = peak_of(scan_file, data, "npz")
        assert fragment in str(error), error
        assert peak < 4 * MIB  # the header said enough: no array was read


def test_scan_and_load_agree_and_the_load_keeps_uint8(payloads):
    """The API's scan and the worker's load say the same about a file; the load keeps uint8 (prepare makes float64)."""
    data = npz_of_zeros(5_000_000, 4)
    scanned, scan_peak = peak_of(scan_file, data, "npz")
    raw, load_peak = peak_of(load_file, data, "npz")
    assert describe(scanned) == describe(raw) and scanned.classes().tolist() == raw.classes().tolist() == [0, 1]
    assert raw.x.dtype == np.uint8 and raw.x.shape == (5_000_000, 4)
    assert scan_peak < 16 * MIB  # blocks of a few MB
    assert load_peak < 2 * raw.x.nbytes + raw.y.nbytes  # the arrays as stored, not a float64 copy (8x)


def test_gzip_stream_refuses_trailing_truncation_and_corruption():
    text = b"a,label\n" + b"0,0\n1,1\n" * 10
    whole = gzip.compress(text)
    assert describe(scan_file(whole + gzip.compress(b"2,0\n3,1\n"), "csv")).n_samples == 22  # members back to back
    for data, fragment in ((whole[:-12], "truncated gzip data"), (whole[:20] + bytes(40) + whole[60:], "corrupt gzip")):
        with pytest.raises(DatasetError, match=fragment):
            scan_file(data, "csv")


def test_uploads_past_the_per_user_quota_are_413_before_any_parsing(limited_both):
    """#46: there was no limit on what one user stores; refusing now costs a sum, not a parse."""
    api = limited_both(max_dataset_bytes_per_user=10_000)
    csv = ("a,b,label\n" + "0,1,0\n1,0,1\n" * 400).encode()  # 4,810 bytes
    first = upload(api.alice, csv, "csv").get_json()
    assert upload(api.alice, csv + b"1,1,1\n", "csv").status_code == 201  # 9,626 bytes stored
    body = problem(upload(api.alice, b"not a CSV, never parsed" * 50, "csv"), 413)
    assert body["type"] == "urn:trainyard:problem:quota-exceeded"
    assert body["detail"] == ("your datasets hold 9,626 bytes; this upload of 1,150 bytes would take them past the "
                              "limit of 10,000 bytes (max_dataset_bytes_per_user): delete some first")
    assert upload(api.bob, csv, "csv").status_code == 201  # per user
    assert api.alice.delete(f"/datasets/{first['id']}").status_code == 204
    assert upload(api.alice, csv + b"0,0,0\n", "csv").status_code == 201
