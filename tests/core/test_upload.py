"""core.datasets.upload: the named object the worker hands core for an uploaded dataset (issue 11, seam 3)."""

from __future__ import annotations

import dataclasses

import pytest

from trainyard.core.datasets import load
from trainyard.core.datasets.upload import Upload
from trainyard.core.spec import DatasetSpec

CSV = b"a,b,y\n1,0,1\n2,1,2\n3,0,1\n4,1,2\n"


def test_an_upload_is_loaded_by_its_named_fields_and_the_spec_overrides():
    raw = load(DatasetSpec(id="ds1"), upload=Upload(data=CSV, format="csv"))
    assert raw.task == "classification" and raw.target_names == ["y"] and raw.x.shape == (4, 2)
    raw = load(DatasetSpec(id="ds1", target="b", task="regression"), upload=Upload(CSV, "csv", target="y"))
    assert raw.target_names == ["b"] and raw.task == "regression"
    raw = load(DatasetSpec(id="ds1"), upload=Upload(CSV, "csv", target="a", task="regression"))
    assert raw.target_names == ["a"] and raw.task == "regression"


def test_an_upload_is_frozen_and_its_repr_leaves_out_the_bytes():
    upload = Upload(data=CSV, format="csv", target="y", labels=b"\x00" * 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        upload.format = "npz"  # type: ignore[misc]
    assert repr(upload) == "Upload(format='csv', target='y', task=None)"
    assert Upload.of((CSV, "csv", "y", None, b"\x00" * 10)) == upload and Upload.of(upload) is upload
