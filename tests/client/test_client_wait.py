"""`Client.wait`: follows the SSE stream, falls back to polling, reconnects, times out; and the SSE parser."""

from __future__ import annotations

import io

import pytest

from trainyard.client import WaitTimeout
from trainyard.client.progress import ProgressBar
from trainyard.client.sse import parse_events


def submit(client, name="xor", epochs=5):
    return client.submit({"name": name, "training": {"epochs": epochs}})


def test_wait_follows_the_event_stream(fake, fake_api, make_client):
    client = make_client()
    job = submit(client)
    rows = []
    final = client.wait(job.id, progress=rows.append)
    assert final.status == "succeeded" and final.metrics["accuracy"] == 1.0
    streamed = [r["epoch"] for r in rows if "loss" in r and "status" not in r]  # the fake moves one epoch per look; wait's GET was one
    assert streamed == [2, 3, 4, 5]
    assert all(r["epochs"] == 5 for r in rows if "epoch" in r)
    assert len(fake.calls("GET", f"/jobs/{job.id}/events")) == 1
    assert not fake.calls("GET", f"/jobs/{job.id}/history")


def test_wait_polls_when_there_is_no_event_stream(fake, fake_api, make_client):
    fake_api.events = "missing"
    client = make_client()
    job = submit(client, epochs=4)
    rows = []
    assert client.wait(job.id, progress=rows.append, poll_interval=0.01).succeeded
    assert fake.calls("GET", f"/jobs/{job.id}/history")
    assert any(r.get("loss") is not None for r in rows)


def test_wait_reconnects_when_the_stream_breaks(fake, fake_api, make_client):
    fake_api.events = "broken"  # one event per connection, then the server hangs up
    client = make_client()
    job = submit(client, name="will-fail", epochs=6)
    final = client.wait(job.id, progress=False)
    assert final.status == "failed" and final.error["code"] == "diverged"
    assert len(fake.calls("GET", f"/jobs/{job.id}/events")) >= 2
    resumed = [int(i) for i in fake_api.last_event_ids[1:]]  # each reconnection resumes after the last epoch
    assert resumed == sorted(resumed) and resumed[0] >= 1


def test_wait_times_out(fake, fake_api, make_client):
    fake_api.events = "missing"
    client = make_client()
    job = submit(client, epochs=10_000)
    with pytest.raises(WaitTimeout):
        client.wait(job.id, timeout=0.3, progress=False, poll_interval=0.05)


def test_sse_parser_follows_the_format():
    lines = [": comment", "event: progress", "data: {\"epoch\": 1}", "", "data: a", "data: b", "id: 7", "",
             "event: status", "data:{\"status\": \"succeeded\"}"]
    events = list(parse_events(lines))
    assert [(e.event, e.data, e.id) for e in events] == [
        ("progress", '{"epoch": 1}', None), ("message", "a\nb", "7"), ("status", '{"status": "succeeded"}', "7")]
    assert events[0].json() == {"epoch": 1} and events[1].json() is None


def test_progress_bar_shows_epoch_loss_metric_and_eta():
    out = io.StringIO()
    now = [100.0]
    bar = ProgressBar(out, width=10, label="j1", clock=lambda: now[0])
    bar.update({"epoch": 250, "epochs": 1000, "loss": 0.123456, "accuracy": 0.75, "time": 5.0}, force=True)
    assert out.getvalue() == "j1  [##--------]  epoch 250/1000  loss 0.1235  accuracy 0.7500  ETA 0:00:15\n"
    bar.update({"epoch": 260, "epochs": 1000, "loss": 0.1}, force=False)  # throttled on a pipe
    assert out.getvalue().count("\n") == 1
