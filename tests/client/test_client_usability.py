"""What a new user ran into: local `path` datasets, a missing token, silent retries, CSV inputs, rough edges."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from trainyard.client import Client, ConnectionFailed, DatasetFileError, ServiceNotRunning
from trainyard.client.cli import main
from trainyard.client.commands import csv_rows
from trainyard.client.transport import api_root

from tests.support.fakeserver import FakeServer, Reply, last_json, problem

POINTS = "x,label\n1,0\n2,1\n"




def form_fields(body: bytes) -> dict[str, str]:
    """The plain (non-file) fields of a multipart body."""
    return {m.group(1).decode(): m.group(2).decode()
            for m in re.finditer(rb'form-data; name="([^"]+)"\r\n\r\n([^\r]*)\r\n', body)}


def closed_port() -> int:
    with socket.socket() as probe:  # a free loopback port, closed again: connections are refused
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- 1. a spec whose dataset is a local path ---------------------------------------------------


def cheese_like(tmp_path: Path, **dataset) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "points.csv").write_text(POINTS)
    spec = {"name": "points", "dataset": {"path": "data/points.csv", "target": "label", "test_split": 0, **dataset},
            "training": {"epochs": 2}}
    path = tmp_path / "points.json"
    path.write_text(json.dumps(spec))
    return path


def test_submit_uploads_a_local_path_relative_to_the_spec_file(cli, fake, tmp_path, monkeypatch):
    monkeypatch.chdir("/")  # the data path is relative to the spec file, not the working directory
    code, out, err = cli("submit", str(cheese_like(tmp_path, task="classification")), "--wait", "--json")
    assert code == 0, err
    assert "uploaded data/points.csv as dataset d1" in err
    upload = fake.calls("POST", "/datasets")[0]
    assert form_fields(upload.body) == {"name": "points", "format": "csv", "target": "label",
                                        "task": "classification"}
    assert b'filename="points.csv"' in upload.body and POINTS.encode() in upload.body
    sent = fake.calls("POST", "/jobs")[0].json()
    assert sent["dataset"] == {"id": "d1", "target": "label", "test_split": 0, "task": "classification"}
    assert last_json(out)["status"] == "succeeded"


def test_the_library_resolves_a_dict_path_from_the_working_directory(fake, fake_api, make_client, tmp_path,
                                                                     monkeypatch):
    spec_file = cheese_like(tmp_path)
    monkeypatch.chdir(tmp_path)
    client = make_client()
    seen = []
    job = client.submit(json.loads(spec_file.read_text()), on_upload=lambda path, record: seen.append((path, record)))
    assert seen == [("data/points.csv", fake_api.datasets["d1"])]
    assert job.spec["dataset"] == {"id": "d1", "target": "label", "test_split": 0}
    job = client.submit(spec_file)  # a spec's path: relative to it; the same bytes again are not uploaded twice
    assert job.spec["dataset"]["id"] == "d1" and len(fake.calls("POST", "/datasets")) == 1
    (tmp_path / "data" / "points.csv").write_text(POINTS + "3,0\n")  # other bytes: a new upload
    assert client.submit(spec_file).spec["dataset"]["id"] == "d2"
    spec = json.loads(spec_file.read_text())
    spec["dataset"]["target"] = "x"  # the same bytes with another target: another dataset
    assert client.submit(spec).spec["dataset"]["id"] == "d3"
    plain = {"name": "builtin", "dataset": {"builtin": "xor"}}
    assert client.upload_local_dataset(plain) == (plain, None)


def test_an_idx_images_file_takes_its_labels_from_beside_it(fake, fake_api, make_client, tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"images")
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"labels")
    spec = {"dataset": {"path": str(tmp_path / "train-images-idx3-ubyte.gz"), "scale": "minmax"}}
    sent, record = make_client().upload_local_dataset(spec)
    body = fake.calls("POST", "/datasets")[0].body
    assert form_fields(body) == {"name": "train-images-idx3-ubyte", "format": "idx"}  # as `datasets upload` names it
    assert b'name="labels"; filename="train-labels-idx1-ubyte.gz"' in body
    assert sent == {"dataset": {"id": record["id"], "scale": "minmax"}}
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetFileError, match="its labels file train-labels-idx1-ubyte"):
        make_client().upload_local_dataset(spec)


def test_a_missing_or_unknown_local_file_is_a_usage_error(cli, fake, tmp_path):
    spec = cheese_like(tmp_path)
    (tmp_path / "data" / "points.csv").unlink()
    code, out, err = cli("submit", str(spec), "--json")
    assert code == 2 and f"{tmp_path / 'data' / 'points.csv'}" in err and "dataset.path 'data/points.csv'" in err
    assert "error" in last_json(out) and not fake.calls("POST", "/datasets") and not fake.calls("POST", "/jobs")
    spec.write_text(json.dumps({"dataset": {"path": "points.json"}}))
    code, _, err = cli("submit", str(spec))
    assert code == 2 and "cannot tell the dataset format" in err


def test_a_refused_spec_deletes_the_upload_made_for_it(cli, fake, fake_api, tmp_path):
    spec = json.loads(cheese_like(tmp_path).read_text())
    spec["model"] = {"layers": [{"activation": "bogus"}]}
    (tmp_path / "points.json").write_text(json.dumps(spec))
    code, _, err = cli("submit", str(tmp_path / "points.json"))
    assert code == 1 and "unknown activation 'bogus'" in err
    assert fake.calls("POST", "/datasets") and fake.calls("DELETE", "/datasets/d1") and fake_api.datasets == {}


# --- 2. no token -----------------------------------------------------------------------------


def test_a_401_without_a_token_says_where_the_cli_looked(cli, fake, tmp_path, monkeypatch):
    monkeypatch.delenv("TRAINYARD_TOKEN")
    monkeypatch.delenv("TRAINYARD_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    fake.routes.insert(0, ("GET", re.compile("^/api/v1/jobs$"), lambda req, m: problem(
        401, "Unauthorized", "send 'Authorization: Bearer TOKEN' (trainyard token create --user NAME makes one)")))
    code, _, err = cli("list")
    assert code == 1
    assert "send 'Authorization: Bearer TOKEN' (trainyard token create --user NAME makes one)" in err
    assert "TRAINYARD_TOKEN is not set" in err and f"{tmp_path.resolve() / 'var' / 'token'}" in err
    assert "was not found" in err and "--token" in err and "TRAINYARD_HOME" in err
    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text("\n")
    monkeypatch.setenv("TRAINYARD_HOME", str(home))
    code, _, err = cli("list")
    assert f"{home.resolve() / 'token'} ($TRAINYARD_HOME/token) is empty" in err
    code, _, err = cli("list", "--token", "wrong")
    assert "the token sent came from --token" in err and "TRAINYARD_TOKEN is not set" not in err


# --- 3. retries are reported; a URL without a scheme ------------------------------------------


def test_the_transport_reports_each_retry_and_prints_nothing_itself(fake, make_client, capsys):
    answers = iter([problem(503, "Service Unavailable", "database restarting"), Reply(200, {"items": []}),
                    Reply(200, {"items": []})])
    fake.route("GET", "/workers", lambda req, m: next(answers))
    calls = []
    client = make_client(retries=2, backoff=0.01, on_retry=lambda *args: calls.append(args))
    assert client.workers() == []
    assert calls == [(1, 2, "503 Service Unavailable: database restarting", 0.01)]
    port = fake.httpd.server_address[1]
    fake.stop()  # the service answered before: a refusal now is a restart, worth the retries
    with pytest.raises(ConnectionFailed, match="connection failed") as info:
        client.workers()
    assert not isinstance(info.value, ServiceNotRunning)
    assert [c[:2] for c in calls[1:]] == [(1, 2), (2, 2)]
    assert calls[1][2] == f"cannot reach http://127.0.0.1:{port}/api/v1: Connection refused"
    assert capsys.readouterr() == ("", "")


def test_a_refused_first_connection_fails_at_once_with_how_to_start_the_service(monkeypatch, capsys):
    """Nothing listening is the commonest first mistake: no 16 s of retries, and the hint to start one."""
    calls = []
    port = closed_port()
    client = Client(f"http://127.0.0.1:{port}", "t", retries=5, on_retry=lambda *args: calls.append(args))
    with pytest.raises(ServiceNotRunning):
        client.catalog()
    assert calls == []
    code = main(["list", "--url", f"127.0.0.1:{port}", "--token", "t"])
    err = capsys.readouterr().err
    assert code == 1
    assert "retrying" not in err
    assert err.splitlines() == [
        f"error: connection failed: cannot reach http://127.0.0.1:{port}/api/v1: Connection refused",
        "  is the service running? start one with `make run` (or `trainyard up`) at the repository root, "
        "or give its address with --url or TRAINYARD_URL"]
    code = main(["list", "--url", f"127.0.0.1:{port}", "--token", "t", "--json"])
    out = capsys.readouterr().out
    assert code == 1 and "make run" in json.loads(out.splitlines()[-1])["error"]["detail"]


def test_a_url_without_a_scheme_is_http(cli, fake):
    assert api_root("127.0.0.1:8811") == "http://127.0.0.1:8811/api/v1"
    assert api_root("https://ty.example/api/v1/") == "https://ty.example/api/v1"
    code, out, _ = cli("catalog", "--url", fake.url.removeprefix("http://"))
    assert code == 0 and "backends:" in out


# --- 4. predict --inputs FILE.csv ----------------------------------------------------------------


def test_csv_inputs_errors_name_the_row_and_column():
    assert csv_rows("a,b\n1,2\n\n3,4\n") == [[1, 2], [3, 4]]
    assert csv_rows("1,2\n3,4\n", 2) == [[1, 2], [3, 4]]
    cases = [("1,2\n3,x\n", None, "row 2, column 2: 'x' is not a number"),
             ("a,b\n1,2\n3,\n", None, "row 2 (after the header), column 2: missing value"),
             ("1,2\n3,4,5\n", None, "row 2 has 3 columns but row 1 has 2"),
             ("a,b\n1,2\n", 3, "row 1 (after the header) has 2 columns; the model takes 3"),
             ("1,nan\n", None, "row 1, column 2: 'nan' is not a finite number"),
             ("a,b\n", None, "the CSV file has no data rows after its header")]
    for text, n, message in cases:
        with pytest.raises(ValueError) as info:
            csv_rows(text, n)
        assert str(info.value) == message


def test_predict_csv_errors_say_how_many_columns_the_model_takes(cli, fake_api, tmp_path):
    data = tmp_path / "points.csv"
    data.write_text(POINTS)
    cli("datasets", "upload", str(data), "--target", "label")  # the fake says: 1 feature
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "one", "dataset": {"id": "d1"}, "training": {"epochs": 1}}))
    cli("submit", str(spec), "--wait", "--quiet")
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1\n2,3\n")
    code, _, err = cli("predict", "j1", "--inputs", str(rows))
    assert code == 2 and f"--inputs {rows}: row 2 (after the header) has 2 columns; the model takes 1" in err
    rows.write_text("x\n1\n2\n")
    assert cli("predict", "j1", "--inputs", str(rows))[0] == 0


# --- 5. small ones ---------------------------------------------------------------------------------


def spec_path(tmp_path: Path, **spec) -> str:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"name": "xor", "training": {"epochs": 3}, **spec}))
    return str(path)


def test_submit_wait_quiet_json_prints_nothing_on_stderr(cli, tmp_path):
    cheese_like(tmp_path)
    code, out, err = cli("submit", str(tmp_path / "points.json"), "--wait", "--quiet", "--json")
    assert code == 0 and last_json(out)["status"] == "succeeded" and err == ""


def test_history_json_has_no_table_note(cli, tmp_path):
    cli("submit", spec_path(tmp_path, training={"epochs": 50}), "--wait", "--quiet")
    code, out, err = cli("history", "j1", "--json")
    assert code == 0 and len(last_json(out)["epochs"]) == 50 and err == ""
    assert "showing 40 of 50 epochs" in cli("history", "j1")[2]


def test_history_plot_of_a_finished_job_without_epochs_is_an_error(cli, tmp_path):
    cli("submit", spec_path(tmp_path, training={"epochs": 1000}))
    cli("cancel", "j1")
    png = tmp_path / "curves.png"
    code, out, err = cli("history", "j1", "--plot", str(png), "--json")
    assert code == 1 and not png.exists()
    assert "nothing to plot: job j1 cancelled without finishing an epoch" in err
    assert last_json(out)["error"]["title"] == "nothing to plot"


def test_download_without_output_names_the_file_after_the_job(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli("submit", spec_path(tmp_path), "--wait", "--quiet")
    code, out, _ = cli("download", "j1")
    assert code == 0 and out.strip() == "wrote j1.npz (2000 bytes)" and (tmp_path / "j1.npz").stat().st_size == 2000


def test_health_prints_one_line_per_check_and_a_503_is_not_retried(cli, fake):
    code, out, _ = cli("health")
    assert code == 0 and out.splitlines() == ["status    ok", "database  ok", "broker    ok"]
    down = FakeServer().start()
    try:
        checks = {"database": {"ok": False, "detail": "OperationalError: connection refused"},
                  "broker": {"ok": True, "detail": "ok"}}
        down.route("GET", "/health", lambda req, m: problem(503, "Service Unavailable", "database unavailable",
                                                            checks=checks))
        code, out, err = cli("health", "--url", down.url)
        assert code == 1 and "database  down: OperationalError: connection refused" in out and "broker    ok" in out
        assert len(down.calls("GET", "/health")) == 1 and "retrying" not in err
    finally:
        down.stop()


def test_workers_show_one_current_jobs_column(cli):
    code, out, _ = cli("workers")
    header, row = out.splitlines()
    assert header.split() == ["NAME", "QUEUES", "DEVICE", "CONCURRENCY", "CURRENT_JOBS", "HOSTNAME", "PID",
                              "STARTED_AT", "LAST_SEEN"]
    assert row.split()[4] == "j9,j8"


def test_a_422_whose_detail_repeats_its_errors_says_it_once(cli, fake, tmp_path):
    errors = [{"loc": "model.layers", "msg": "too big"}, {"loc": "training.epochs", "msg": "too many"}]
    fake.routes.insert(0, ("POST", re.compile("^/api/v1/jobs$"), lambda req, m: problem(
        422, "Unprocessable Entity", "model.layers: too big; training.epochs: too many", errors=errors)))
    code, _, err = cli("submit", spec_path(tmp_path))
    assert code == 1 and err.splitlines() == ["error: 422 Unprocessable Entity", "  model.layers: too big",
                                              "  training.epochs: too many"]
