"""/datasets: uploads validated with core.datasets before they are stored; list, read, delete, use in a spec."""

from __future__ import annotations

import hashlib
import io

import numpy as np

from tests.support.api import make_api, problem, xor

CSV = "a,b,label\n" + "".join(f"{a},{b},{'yes' if a != b else 'no'}\n" for a, b in [(0, 0), (0, 1), (1, 0), (1, 1)] * 3)


def upload(caller, data: bytes | str = CSV, labels: bytes | None = None, **form):
    data = data.encode() if isinstance(data, str) else data
    fields = {"name": "gates", "format": "csv", "target": "label", **form}
    fields["file"] = (io.BytesIO(data), "data.csv")
    if labels is not None:
        fields["labels"] = (io.BytesIO(labels), "labels-idx1-ubyte")
    return caller.post("/datasets", data=fields, content_type="multipart/form-data")


def idx(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file holding `array`."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_upload_csv_then_train_on_it(api):
    r = upload(api.alice)
    assert r.status_code == 201, r.get_json()
    ds = r.get_json()
    assert r.headers["Location"] == f"/api/v1/datasets/{ds['id']}"
    assert (ds["n_samples"], ds["n_features"], ds["n_classes"], ds["task"]) == (12, 2, 2, "classification")
    assert ds["classes"] == ["no", "yes"] and ds["feature_names"] == ["a", "b"] and ds["target"] == "label"
    assert ds["sha256"] == hashlib.sha256(CSV.encode()).hexdigest() and ds["size_bytes"] == len(CSV)
    # The list carries a summary: everything but the (up to max_features) names and the class labels.
    summary = {k: v for k, v in ds.items() if k not in ("classes", "feature_names")}
    assert api.alice.get("/datasets").get_json()["items"] == [summary]
    assert api.alice.get(f"/datasets/{ds['id']}").get_json() == ds
    job = api.alice.submit(xor(dataset={"id": ds["id"]}))
    assert job["spec"]["dataset"]["id"] == ds["id"] and job["spec"]["training"]["metrics"] == ["accuracy"]
    wrong = xor(dataset={"id": ds["id"]}, model={"layers": [{"type": "dense", "units": 3, "activation": "softmax"}]})
    body = problem(api.alice.post("/jobs", json=wrong), 422)
    assert body["errors"] == [{"loc": "model.layers[0].units", "msg": "3 output units but the dataset has 2 classes"}]


def test_upload_npz_regression(api):
    buf = io.BytesIO()
    x = np.arange(20, dtype=float).reshape(10, 2)
    np.savez(buf, X=x, y=x.sum(axis=1) + 0.5)
    r = upload(api.alice, buf.getvalue(), format="npz", target="")
    assert r.status_code == 201, r.get_json()
    ds = r.get_json()
    assert (ds["task"], ds["n_samples"], ds["n_features"], ds["n_classes"], ds["target"]) == ("regression", 10, 2,
                                                                                                None, None)


def test_upload_idx_pair(api):
    images = np.arange(6 * 3 * 3).reshape(6, 3, 3) % 256
    r = upload(api.alice, idx(images), labels=idx(np.array([3, 5, 3, 5, 7, 7])), format="idx", target="")
    assert r.status_code == 201, r.get_json()
    ds = r.get_json()
    assert (ds["format"], ds["n_samples"], ds["n_features"], ds["n_classes"], ds["classes"]) == ("idx", 6, 9, 3,
                                                                                                  [3, 5, 7])
    bad = upload(api.alice, idx(images), labels=idx(np.array([1, 2, 3])), format="idx", target="")
    assert "6 images but the labels file 3 labels" in problem(bad, 422)["errors"][0]["msg"]


def test_upload_errors(sqlite_settings):
    a = make_api(sqlite_settings, max_upload_bytes=4096)
    assert "multipart/form-data" in problem(a.alice.post("/datasets", json={"name": "x"}), 415)["detail"]
    assert problem(upload(a.alice, "a,b\n" + "1,2\n" * 2000), 413)
    bad = CSV.replace("1,1,no", "1,nan,no", 1)
    body = problem(upload(a.alice, bad), 422)
    assert body["errors"][0]["loc"] == "file" and "not a finite number" in body["errors"][0]["msg"]
    assert problem(upload(a.alice, format="xlsx"), 422)["errors"] == [
        {"loc": "format", "msg": "'xlsx' is not one of csv, npz, idx"}]
    assert problem(upload(a.alice, name=""), 422)["errors"] == [{"loc": "name", "msg": "required"}]
    assert problem(upload(a.alice, name="n" * 201), 422)["errors"] == [{"loc": "name", "msg": "at most 200 characters"}]
    assert problem(upload(a.alice, target="missing"), 422)["errors"][0]["loc"] == "file"
    assert problem(upload(a.alice, format="idx", target=""), 422)["errors"][0]["loc"] == "labels"
    assert a.alice.get("/datasets").get_json()["items"] == []


def test_datasets_are_private_and_deleting_one_in_use_is_409(api):
    ds = upload(api.alice).get_json()
    assert problem(api.bob.get(f"/datasets/{ds['id']}"), 404)
    assert problem(api.bob.delete(f"/datasets/{ds['id']}"), 404)
    body = problem(api.bob.post("/jobs", json=xor(dataset={"id": ds["id"]})), 422)
    assert body["errors"][0]["loc"] == "dataset.id"
    job = api.alice.submit(xor(dataset={"id": ds["id"]}))
    assert problem(api.alice.delete(f"/datasets/{ds['id']}"), 409)
    api.alice.post(f"/jobs/{job['id']}/cancel")
    assert api.alice.delete(f"/datasets/{ds['id']}").status_code == 204
    assert problem(api.alice.get(f"/datasets/{ds['id']}"), 404)
