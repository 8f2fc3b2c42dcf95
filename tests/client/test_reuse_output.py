"""`trainyard status` says when a job reused an identical earlier job's results (store.reuse)."""

from trainyard.client.models import Job
from trainyard.client.output import job_summary


def test_status_names_the_job_whose_results_were_reused():
    body = {"id": "j2", "name": "xor", "status": "succeeded", "backend": "numpy", "device": "cpu",
            "progress": {"epoch": 200, "epochs": 200}, "attempts": 0, "reused_from": "j1"}
    lines = job_summary(Job(body)).splitlines()
    assert "reused from  j1" in lines
    assert not any(line.startswith("reused from") for line in job_summary(Job({**body, "reused_from": None}))
                   .splitlines())
