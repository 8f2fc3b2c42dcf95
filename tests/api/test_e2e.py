"""The API with a real worker process (not eager mode), on SQLite + filesystem broker and on PostgreSQL + Redis."""

from __future__ import annotations

import pytest

from tests.support.api import XOR_FIT, XOR_INPUTS, make_api, problem, xor
from tests.support.processes import start_worker, stop_process, wait_for

LONG = xor(name="long", training={"epochs": 200_000, "seed": 1, "batch_size": 4})
DIVERGES = {"name": "diverges", "dataset": {"builtin": "diabetes"}, "model": {"layers": [{"type": "dense", "units": 1}]},
            "training": {"epochs": 50, "seed": 1, "optimizer": {"name": "sgd", "learning_rate": 1000.0}}}


@pytest.fixture
def live(db_settings):
    """The app plus one real worker on the `cpu` queue, registered and ready."""
    api = make_api(db_settings)
    worker = start_worker(api.settings)
    try:
        wait_for(lambda: worker.poll() is not None or api.alice.get("/workers").get_json()["items"], 60,
                 "the worker to register")
        assert worker.poll() is None, (api.settings.home / "worker.log").read_text()
        yield api
    finally:
        stop_process(worker)
        api.engine.dispose()


def wait_status(api, job_id: str, statuses: tuple[str, ...], timeout: float = 60) -> dict:
    def done():
        job = api.alice.get(f"/jobs/{job_id}").get_json()
        return job if job["status"] in statuses else None

    return wait_for(done, timeout, f"job {job_id} to be {' or '.join(statuses)}")


def test_jobs_run_on_a_real_worker(live):
    api = live
    # Train, stream, fetch history and the model, predict.
    job = api.alice.submit(XOR_FIT)
    events = api.alice.get(f"/jobs/{job['id']}/events").get_data(as_text=True)  # streams until it finishes
    blocks = [b for b in events.split("\n\n") if "event:" in b]
    assert blocks[-1].startswith("event: status") and '"status":"succeeded"' in blocks[-1]
    assert sum(b.count("event: progress") for b in blocks) == 200
    done = api.alice.get(f"/jobs/{job['id']}").get_json()
    assert done["status"] == "succeeded" and done["attempts"] == 1 and done["worker"].startswith("cpu-")
    assert done["metrics"]["accuracy"] == 1.0 and done["progress"] == {"epoch": 200, "epochs": 200, "stop_reason": None}
    assert len(api.alice.get(f"/jobs/{job['id']}/history").get_json()["epochs"]) == 200
    model = api.alice.get(f"/jobs/{job['id']}/model")
    assert model.status_code == 200 and model.headers["Content-Disposition"].endswith('.npz"')
    out = api.alice.post(f"/jobs/{job['id']}/predict", json={"inputs": XOR_INPUTS}).get_json()
    assert out["predictions"] == [0, 1, 1, 0] and all(len(p) == 2 for p in out["probabilities"])

    # Cancel a running job: it stops at an epoch boundary.
    long = api.alice.submit(LONG)
    wait_status(api, long["id"], ("running",))
    r = api.alice.post(f"/jobs/{long['id']}/cancel")
    assert r.status_code == 202 and r.get_json()["cancel_requested"] is True
    cancelled = wait_status(api, long["id"], ("cancelled", "failed", "succeeded"), timeout=15)
    assert cancelled["status"] == "cancelled" and cancelled["error"]["code"] == "cancelled"
    assert 0 < cancelled["progress"]["epoch"] < 200_000
    assert problem(api.alice.post(f"/jobs/{long['id']}/cancel"), 409)

    # No worker listens on gpu: the job says so, and cancelling it is immediate.
    gpu = api.alice.submit(xor(device="gpu", backend="keras"))
    assert api.alice.get(f"/jobs/{gpu['id']}").get_json()["pending_reason"] == "no live worker listens on queue gpu"
    assert api.alice.post(f"/jobs/{gpu['id']}/cancel").get_json()["status"] == "cancelled"

    # A diverging job fails with its stable code.
    bad = api.alice.submit(DIVERGES)
    failed = wait_status(api, bad["id"], ("failed", "succeeded"))
    assert failed["status"] == "failed" and failed["error"]["code"] == "diverged" and failed["metrics"] is None
    assert problem(api.alice.post(f"/jobs/{bad['id']}/predict", json={"inputs": [[0] * 10]}), 409)
    assert api.alice.delete(f"/jobs/{bad['id']}").status_code == 204
