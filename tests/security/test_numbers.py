"""Non-finite numbers never get in: NaN / infinity in an upload (CSV, NPZ, IDX) or in predict inputs is a 422 naming
the column and row; spec values likewise. (Divergence and bare NaN in responses: test_runaway_jobs.py.)
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.support import fakeworker as fake_worker, hostile
from tests.support.api import XOR_FIT, problem, xor


def upload(caller, data: bytes, fmt: str, labels: bytes | None = None, target: str | None = None):
    fields = {"name": "n", "format": fmt, "file": (io.BytesIO(data), "f")}
    if target:
        fields["target"] = target
    if labels is not None:
        fields["labels"] = (io.BytesIO(labels), "l")
    return caller.post("/datasets", data=fields, content_type="multipart/form-data")


def npz(x, y) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, X=np.asarray(x), y=np.asarray(y))
    return buf.getvalue()


GOOD_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, 0.5]]


@pytest.mark.parametrize("token", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e400"])
def test_csv_cells_that_are_not_finite_are_422_naming_column_and_row(api, token):
    csv = f"a,b,label\n0,0,0\n0,1,1\n1,{token},1\n1,1,0\n".encode()
    body = problem(upload(api.alice, csv, "csv", target="label"), 422)
    assert body["errors"][0]["loc"] == "file"
    assert "column 'b', row 3" in body["errors"][0]["msg"] and "not a finite number" in body["errors"][0]["msg"]
    reg = f"a,b,y\n0,0,0.5\n0,1,1.5\n1,0,{token}\n1,1,0.25\n".encode()  # a regression target
    body = problem(upload(api.alice, reg, "csv", target="y"), 422)
    assert "target column 'y', row 3" in body["errors"][0]["msg"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npz_and_idx_values_that_are_not_finite_are_422_naming_column_and_row(api, bad):
    x = np.array(GOOD_X)
    x[3, 1] = bad
    body = problem(upload(api.alice, npz(x, [0, 1, 1, 0, 1]), "npz"), 422)
    assert "column 'x1', row 4" in body["errors"][0]["msg"]
    body = problem(upload(api.alice, npz(GOOD_X, [0.1, 0.2, bad, 0.4, 0.5]), "npz"), 422)
    assert "target column 'y', row 3" in body["errors"][0]["msg"]
    images = np.zeros((4, 2, 2), dtype=">f4")
    images[2, 1, 0] = bad
    body = problem(upload(api.alice, hostile.idx(images, 0x0D, ">f4"), "idx", hostile.idx(np.array([0, 1, 0, 1]))),
                   422)
    assert "column 'x2', row 3" in body["errors"][0]["msg"]
    labels = np.array([0.5, bad, 1.5, 2.5], dtype=">f8")
    body = problem(upload(api.alice, hostile.idx(np.zeros((4, 2, 2))), "idx", hostile.idx(labels, 0x0E, ">f8")), 422)
    assert "target column 'label', row 2" in body["errors"][0]["msg"]
    assert api.alice.get("/datasets").get_json()["items"] == []


@pytest.mark.parametrize("literal, shown", [("NaN", "nan"), ("Infinity", "inf"), ("-Infinity", "-inf"),
                                            ("1e999", "inf"), ("-1e999", "-inf")])
def test_predict_inputs_that_are_not_finite_are_422_naming_row_and_column(api, literal, shown):
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    r = api.alice.post(f"/jobs/{job['id']}/predict", data=f'{{"inputs": [[0, 0], [1, 1], [0, {literal}]]}}',
                       headers={"Content-Type": "application/json"})
    assert problem(r, 422)["errors"] == [{"loc": "inputs[2][1]",
                                          "msg": f"{shown} is not a finite number (NaN and infinity are not allowed)"}]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_spec_numbers_that_are_not_finite_are_422(api, literal):
    text = ('{"dataset": {"builtin": "xor"}, "model": {"layers": [{"type": "dense", "units": 1, '
            '"activation": "sigmoid"}]}, "training": {"epochs": 2, "optimizer": {"name": "sgd", "learning_rate": '
            f'{literal}}}}}}}')
    r = api.alice.post("/jobs", data=text, headers={"Content-Type": "application/json"})
    body = problem(r, 422)
    assert any(e["loc"].startswith("training.optimizer") for e in body["errors"]), body
    assert api.alice.get("/jobs").get_json()["items"] == []
    assert api.alice.post("/jobs", json=xor()).status_code == 201
