"""A client generated from the service's own /openapi.json by openapi-python-client works, typed, end to end.

Issue 13 §2: the generator dropped `Job` and `JobList` (an inline "Spec" model collided with `JobSpec`), so a
generated client could not submit, read or list jobs, and `/events` crashed it. Here the document is fetched
from a running service (gunicorn, a real worker), a client is generated into a temporary folder and imported
from there, and it submits, polls, lists, reads history, predicts and uploads with typed objects only.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def generated(stack, tmp_path_factory):
    """The `trainyard_client` package openapi-python-client generates from the live document, imported."""
    out = tmp_path_factory.mktemp("generated")
    status, _, document = stack.get("/api/v1/openapi.json")
    assert status == 200
    (out / "openapi.json").write_bytes(document)
    tool = Path(sys.executable).with_name("openapi-python-client")
    run = subprocess.run([str(tool), "generate", "--path", str(out / "openapi.json"), "--output-path",
                          str(out / "trainyard_client"), "--meta", "none"], capture_output=True, text=True,
                         timeout=120, env={"PATH": f"{tool.parent}:/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout + run.stderr
    # The generator says what it had to leave out (a model it could not build, a body it could not type).
    assert "Unable to" not in run.stdout + run.stderr and "duplicate" not in run.stdout + run.stderr, run.stdout
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("trainyard_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "trainyard_client" or m.startswith("trainyard_client.")]:
            del sys.modules[name]


def test_a_generated_client_submits_polls_lists_reads_predicts_and_uploads_typed(stack, generated):
    from trainyard_client import AuthenticatedClient

    with AuthenticatedClient(base_url=stack.url, token=stack.token, raise_on_unexpected_status=True) as client:
        typed_walk(client, generated)


def typed_walk(client, generated) -> None:
    from trainyard_client.api.datasets import post_datasets
    from trainyard_client.api.jobs import (get_jobs, get_jobs_job_id, get_jobs_job_id_events,
                                           get_jobs_job_id_history, post_jobs, post_jobs_job_id_predict)
    from trainyard_client.models import (ActivationType0, Dataset, DatasetSpec, DatasetSpecBuiltinType0,
                                         DatasetUpload, DatasetUploadFormat, Dense, GetJobsStatusItem, History, Job,
                                         JobList, JobSpec, JobStatus, ModelSpec, Optimizer, OptimizerName,
                                         PredictRequest, PredictResponse, TrainingSpec)
    from trainyard_client.types import File

    spec = JobSpec(name="generated", dataset=DatasetSpec(builtin=DatasetSpecBuiltinType0.XOR),
                   model=ModelSpec(layers=[Dense(type_="dense", units=8, activation=ActivationType0.TANH),
                                           Dense(type_="dense", units=1, activation=ActivationType0.SIGMOID)]),
                   training=TrainingSpec(epochs=200, seed=3, batch_size=4,
                                         optimizer=Optimizer(name=OptimizerName.ADAM, learning_rate=0.05)))
    job = post_jobs.sync(client=client, body=spec)
    assert isinstance(job, Job) and job.status == JobStatus.QUEUED
    assert isinstance(job.spec, JobSpec) and job.spec.dataset.builtin == DatasetSpecBuiltinType0.XOR
    assert job.spec.training.optimizer.learning_rate == 0.05 and job.created_at.tzinfo is not None

    deadline = time.monotonic() + 60
    while job.status in (JobStatus.QUEUED, JobStatus.RUNNING) and time.monotonic() < deadline:
        time.sleep(0.2)
        job = get_jobs_job_id.sync(job.id, client=client)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.metrics["accuracy"] == 1.0 and job.finished_at >= job.started_at

    listed = get_jobs.sync(client=client, status=[GetJobsStatusItem.SUCCEEDED], limit=10)
    assert isinstance(listed, JobList) and job.id in [j.id for j in listed.items]

    history = get_jobs_job_id_history.sync(job.id, client=client, since=198)
    assert isinstance(history, History) and [row.epoch for row in history.epochs] == [199, 200]
    assert history.epochs[-1].additional_properties["accuracy"] == 1.0 and history.has_more is False

    events = get_jobs_job_id_events.sync(job.id, client=client, since=199)  # a finished job's stream ends
    assert isinstance(events, str) and "event: status" in events

    out = post_jobs_job_id_predict.sync(job.id, client=client,
                                        body=PredictRequest(inputs=[[0, 0], [0, 1], [1, 0], [1, 1]]))
    assert isinstance(out, PredictResponse) and out.predictions == [0, 1, 1, 0] and out.classes == [0, 1]

    upload = DatasetUpload(file=File(payload=io.BytesIO(b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"), file_name="x.csv"),
                           name="xor-csv", format_=DatasetUploadFormat.CSV, target="y")
    dataset = post_datasets.sync(client=client, body=upload)
    assert isinstance(dataset, Dataset) and (dataset.n_samples, dataset.n_features, dataset.classes) == (4, 2, [0, 1])
