"""/metrics of a real `trainyard api` with 2 gunicorn worker processes (issue 13 §2).

Counters were per process: a scrape saw whichever process answered it (a real Prometheus counted 63 of 100
requests), and `trainyard_job_duration_seconds` went down when a job was deleted. Here 100 requests on new
connections (spread over both processes) are 100 in every scrape, job counters keep a deleted job, and the
exposition parses strictly — promtool when it is installed, else prometheus_client's parsers — under one
Content-Type with one charset.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,"
                     "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
CATALOG = ("trainyard_http_requests_total", (("endpoint", "catalog.get_catalog"), ("method", "GET"),
                                             ("status", "200")))


def scrape(stack, accept: str | None = None) -> tuple[dict, str, str]:
    request = urllib.request.Request(stack.url + "/api/v1/metrics", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as r:  # a new connection each time: any process answers
        content_types = r.headers.get_all("Content-Type")
        text = r.read().decode()
    assert len(content_types) == 1, content_types
    parse = openmetrics_families if accept else text_string_to_metric_families
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in parse(text) for s in f.samples}
    return found, content_types[0], text


def test_counters_are_whole_across_api_processes(stack):
    assert not (stack.multiproc_dir / "counter_1.db").exists()  # an earlier run's file was cleared at start
    before = scrape(stack)[0].get(CATALOG, 0)
    for _ in range(100):
        assert stack.get("/api/v1/catalog")[0] == 200
    # Both processes answered some: each writes its own file.
    assert len(list(stack.multiproc_dir.glob("counter_*.db"))) >= 2
    for _ in range(10):
        assert scrape(stack)[0][CATALOG] == before + 100


def test_exposition_is_strict_with_one_content_type(stack, tmp_path):
    _, content_type, text = scrape(stack)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    _, om_type, om_text = scrape(stack, PROMETHEUS_ACCEPT)
    assert om_type == "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
    params = [p.split("=")[0].strip() for p in om_type.split(";")[1:]]
    assert len(params) == len(set(params))  # Go's mime.ParseMediaType refuses a repeated parameter
    promtool = shutil.which("promtool")
    if promtool:  # Debian's prometheus package (.ci/run unpacks it); it reads the text format, not OpenMetrics
        run = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
    assert om_text.endswith("# EOF\n")  # (and the OpenMetrics parser above accepted all of it)


def test_job_counters_never_go_down_across_processes(stack):
    def submit(seed: int) -> str:
        spec = {"name": "m", "dataset": {"builtin": "xor"}, "model": {"layers": [{"type": "dense", "units": 1,
                                                                                   "activation": "sigmoid"}]},
                "training": {"epochs": 3, "seed": seed}}
        request = urllib.request.Request(stack.url + "/api/v1/jobs", data=json.dumps(spec).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {stack.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read())["id"]

    ids = [submit(seed) for seed in (101, 102)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(json.loads(stack.get(f"/api/v1/jobs/{i}")[2])["status"] == "succeeded" for i in ids):
            break
        time.sleep(0.2)
    before = scrape(stack)[0]
    succeeded = (("backend", "numpy"), ("queue", "cpu"), ("status", "succeeded"))
    assert before[("trainyard_jobs_finished_total", succeeded)] >= 2
    assert before[("trainyard_workers", (("queue", "cpu"),))] == 1
    for i in ids:
        request = urllib.request.Request(stack.url + f"/api/v1/jobs/{i}", method="DELETE",
                                         headers={"Authorization": f"Bearer {stack.token}"})
        with urllib.request.urlopen(request, timeout=30) as r:
            assert r.status == 204
    for _ in range(5):  # whichever process answers
        after = scrape(stack)[0]
        for key, value in before.items():
            if key[0].startswith("trainyard_job") and key[0].endswith(("_total", "_count", "_sum", "_bucket")):
                assert after[key] == value, key
