"""GET /jobs/{id}/decision-boundary: a two-feature model over a grid, from the model or the latest checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from trainyard.core import datasets
from trainyard.core.checkpoint import save_checkpoint
from trainyard.core.spec.checks import finalize_spec
from trainyard.core.training import Trainer
from trainyard.core.validate import validate_spec
from trainyard.store.db import session_scope
from trainyard.store.runs import save_checkpoint as store_checkpoint

from tests.support import fakeworker as fake_worker
from tests.support.api import XOR_FIT, problem, xor


def near(axis: list[float], value: float) -> int:
    return int(np.argmin(np.abs(np.asarray(axis) - value)))


def test_a_trained_xor_model_separates_the_four_corners(api_both):
    job = api_both.alice.submit(XOR_FIT)
    fake_worker.train(api_both, job["id"], XOR_FIT)
    r = api_both.alice.get(f"/jobs/{job['id']}/decision-boundary?size=41")
    assert r.status_code == 200, r.get_json()
    b = r.get_json()
    assert b["source"] == "model" and b["epoch"] == 200 and b["label"] == "P(1)" and (b["zmin"], b["zmax"]) == (0, 1)
    assert len(b["x"]) == len(b["y"]) == 41 and len(b["z"]) == 41 and all(len(row) == 41 for row in b["z"])
    assert b["x"][0] < 0 < 1 < b["x"][-1]  # the plane spans the points with a margin
    z = {(x, y): b["z"][near(b["y"], y)][near(b["x"], x)] for x in (0, 1) for y in (0, 1)}
    assert z[(0, 0)] < 0.2 and z[(1, 1)] < 0.2 and z[(0, 1)] > 0.8 and z[(1, 0)] > 0.8, z
    assert sorted(zip(b["points"]["x"], b["points"]["y"], b["points"]["label"])) == [
        (0, 0, "0"), (0, 1, "1"), (1, 0, "1"), (1, 1, "0")]
    # what predict says at those points, the same model
    probs = api_both.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": [[0, 1]]}).get_json()["probabilities"]
    assert abs(probs[0][1] - z[(0, 1)]) < 0.05


def test_while_training_it_comes_from_the_latest_checkpoint(api):
    spec = xor(training={"epochs": 50, "seed": 1, "batch_size": 4})
    job = api.alice.submit(spec)
    attempt = fake_worker.claim(api, job["id"])
    problem(api.alice.get(f"/jobs/{job['id']}/decision-boundary"), 409)  # no checkpoint yet
    parsed = validate_spec(spec)
    raw = datasets.load(parsed.dataset)
    finalize_spec(parsed, datasets.describe(raw))
    trainer = Trainer(parsed, datasets.prepare(raw, parsed.dataset), None, np.float32)
    with session_scope(api.sessions) as s:
        store_checkpoint(session=s, job_id=job["id"], attempt=attempt, epoch=7, state=save_checkpoint(trainer, 7))
    b = api.alice.get(f"/jobs/{job['id']}/decision-boundary?size=10").get_json()
    assert b["source"] == "checkpoint" and b["epoch"] == 7
    z = np.asarray(b["z"])
    assert z.shape == (10, 10) and np.all((z >= 0) & (z <= 1))


def test_limits_and_what_has_no_boundary(api):
    job = api.alice.submit(XOR_FIT)
    problem(api.alice.get(f"/jobs/{job['id']}/decision-boundary"), 409)  # queued: no model, no checkpoint
    fake_worker.train(api, job["id"], XOR_FIT)
    for size in ("9", "201", "x"):
        assert problem(api.alice.get(f"/jobs/{job['id']}/decision-boundary?size={size}"), 422)["errors"][0]["loc"] == "size"
    problem(api.bob.get(f"/jobs/{job['id']}/decision-boundary"), 404)  # another user's job
    iris = xor(dataset={"builtin": "iris"}, model={"layers": [{"type": "dense", "units": 3, "activation": "softmax"}]},
               training={"epochs": 2, "seed": 1, "loss": "categorical_crossentropy"})
    other = api.alice.submit(iris)
    fake_worker.train(api, other["id"], iris)
    assert "4 features" in problem(api.alice.get(f"/jobs/{other['id']}/decision-boundary"), 409)["detail"]
