"""The `trainyard` CLI against the fake service: exit codes, `--json` as the last stdout line, readable errors."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from trainyard.client.cli import main

from tests.support.fakeserver import last_json

SPEC = {"name": "xor", "training": {"epochs": 3}}




@pytest.fixture
def spec_file(tmp_path):
    def write(spec=SPEC, name="spec.json"):
        path = tmp_path / name
        path.write_text(json.dumps(spec))
        return str(path)

    return write


def test_submit_wait_exits_0_when_the_job_succeeds(cli, spec_file):
    code, out, err = cli("submit", spec_file(), "--wait", "--json")
    assert code == 0
    job = last_json(out)
    assert job["status"] == "succeeded" and job["metrics"]["accuracy"] == 1.0
    assert "epoch 3/3" in err  # the progress bar is on stderr, stdout stays parseable


def test_submit_wait_exits_1_when_the_job_fails(cli, spec_file):
    code, out, err = cli("submit", spec_file({"name": "fail-me", "training": {"epochs": 2}}), "--wait")
    assert code == 1
    assert "status    failed" in out and "diverged: loss became non-finite in epoch 2" in out


def test_submit_without_wait_prints_the_new_job(cli, spec_file, fake_api):
    code, out, _ = cli("submit", spec_file(), "--json")
    assert code == 0 and last_json(out)["status"] == "queued"
    code, out, _ = cli("submit", spec_file())
    assert out.strip() == "submitted job j2 (xor, queued)"


def test_invalid_spec_prints_the_field_path(cli, spec_file):
    bad = {"name": "bad", "model": {"layers": [{"activation": "relu"}, {"activation": "bogus"}]}}
    code, out, err = cli("submit", spec_file(bad), "--json")
    assert code == 1
    assert "422 Unprocessable Content: invalid spec" in err
    assert "  model.layers[1].activation: unknown activation 'bogus'" in err
    problem = last_json(out)["error"]
    assert problem["status"] == 422 and problem["errors"][0]["loc"] == "model.layers[1].activation"


def test_wait_exit_codes(cli, spec_file, fake_api):
    cli("submit", spec_file())
    code, out, _ = cli("wait", "j1", "--json", "--quiet")
    assert code == 0 and last_json(out)["status"] == "succeeded"
    cli("submit", spec_file({"name": "long", "training": {"epochs": 1000}}))
    code, out, _ = cli("cancel", "j2", "--json")
    assert code == 0 and last_json(out)["status"] == "cancelled"
    code, out, _ = cli("wait", "j2", "--json")
    assert code == 1 and last_json(out)["status"] == "cancelled"
    assert cli("cancel", "j2")[0] == 0  # cancelling twice is not an error
    code, _, err = cli("cancel", "j1")
    assert code == 1 and "409 Conflict: job j1 already succeeded" in err
    code, out, err = cli("wait", "nope", "--json")
    assert code == 1 and last_json(out)["error"]["status"] == 404 and "no job with id 'nope'" in err


def test_wait_timeout_exits_1(cli, spec_file, fake_api):
    fake_api.events = "missing"
    cli("submit", spec_file({"name": "long", "training": {"epochs": 100000}}))
    code, out, err = cli("wait", "j1", "--timeout", "0.5", "--json", "--quiet")
    assert code == 1 and last_json(out)["status"] == "running" and "did not finish within 0.5 s" in err


def test_usage_errors_exit_2(cli, tmp_path):
    assert cli("wait")[0] == 2
    assert cli("frobnicate")[0] == 2
    assert cli("list", "--status", "bogus")[0] == 2
    code, out, err = cli("submit", str(tmp_path / "missing.json"), "--json")
    assert code == 2 and "missing.json" in err and "error" in last_json(out)
    assert cli("--help")[0] == 0


def test_status_list_history_and_plot(cli, spec_file, tmp_path):
    cli("submit", spec_file(), "--wait", "--quiet")
    code, out, _ = cli("status", "j1")
    assert code == 0 and "status    succeeded" in out and "accuracy 1.0000" in out
    code, out, _ = cli("list")
    assert out.splitlines()[0].split() == ["ID", "NAME", "STATUS", "BACKEND", "DEVICE", "PROGRESS", "CREATED"]
    assert out.splitlines()[1].split()[:3] == ["j1", "xor", "succeeded"]
    code, out, _ = cli("list", "--json", "--status", "succeeded", "--limit", "5")
    assert [j["id"] for j in last_json(out)["items"]] == ["j1"]
    png = tmp_path / "curves.png"
    code, out, err = cli("history", "j1", "--plot", str(png))
    assert code == 0 and out.splitlines()[0].split() == ["EPOCH", "LOSS", "ACCURACY", "VAL_LOSS", "TIME"]
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and f"wrote {png}" in err
    code, out, _ = cli("history", "j1", "--json")
    assert [row["epoch"] for row in last_json(out)["epochs"]] == [1, 2, 3]


def test_download_and_predict(cli, spec_file, tmp_path):
    cli("submit", spec_file(), "--wait", "--quiet")
    model = tmp_path / "model.npz"
    code, out, _ = cli("download", "j1", "-o", str(model), "--json")
    assert code == 0 and last_json(out)["size_bytes"] == model.stat().st_size == 2000
    code, out, _ = cli("predict", "j1", "--inputs", "[[0,0],[0,1],[1,0],[1,1]]", "--json")
    assert last_json(out)["predictions"] == [0, 1, 1, 0]
    csv = tmp_path / "inputs.csv"
    csv.write_text("x1,x2\n0,1\n1,1\n")
    code, out, _ = cli("predict", "j1", "--inputs", str(csv))
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["INPUT", "PREDICTION", "PROBABILITIES"]
    assert lines[1].split() == ["0,1", "1", "0.2,0.8"]


def test_download_before_success_is_a_conflict(cli, spec_file, tmp_path):
    cli("submit", spec_file({"name": "long", "training": {"epochs": 1000}}))
    code, _, err = cli("download", "j1", "-o", str(tmp_path / "m.npz"))
    assert code == 1 and "409 Conflict" in err and not (tmp_path / "m.npz").exists()


def test_datasets_catalog_workers_health(cli, tmp_path):
    data = tmp_path / "points.csv"
    data.write_text("x,label\n1,0\n2,1\n")
    code, out, _ = cli("datasets", "upload", str(data), "--target", "label", "--name", "points", "--json")
    assert code == 0 and last_json(out)["name"] == "points"
    code, out, _ = cli("datasets", "list")
    assert out.splitlines()[1].split()[:3] == ["d1", "points", "classification"]
    assert cli("datasets", "delete", "d1")[0] == 0
    code, _, err = cli("datasets", "delete", "d1")
    assert code == 1 and "404 Not Found" in err
    code, out, _ = cli("catalog")
    assert "backends:\n  numpy\n" in out and "leaky_relu  alpha=0.01\n" in out
    code, out, _ = cli("workers", "--json")
    assert last_json(out)["items"][0]["queues"] == ["cpu"]
    code, out, _ = cli("health")
    assert code == 0 and "database  ok" in out


def test_service_commands_call_their_owners(monkeypatch):
    calls = []
    for module, function in [("trainyard.client.local_run", "run_command"), ("trainyard.api.embedded", "up"), ("trainyard.api.serve", "serve"),
                             ("trainyard.worker.main", "run_worker"), ("trainyard.worker.reconciler", "main"),
                             ("trainyard.store.migrate", "main"), ("trainyard.store.token_commands", "create_token_cli"),
                             ("trainyard.store.token_commands", "list_tokens_cli"),
                             ("trainyard.store.token_commands", "revoke_token_cli")]:
        fake_module = sys.modules.get(f"fake:{module}") or types.ModuleType(module)
        setattr(fake_module, function, lambda *a, _f=f"{module}.{function}", **k: calls.append((_f, a, k)) or 0)
        sys.modules[f"fake:{module}"] = fake_module
        monkeypatch.setitem(sys.modules, module, fake_module)
    assert main(["run", "s.json", "--quiet"]) == 0
    assert main(["up"]) == 0
    assert main(["api", "--host", "0.0.0.0", "--port", "9000", "--workers", "3"]) == 0
    assert main(["worker", "--queues", "cpu,gpu", "--concurrency", "2"]) == 0
    assert main(["reconcile"]) == main(["migrate"]) == 0
    assert main(["token", "create", "--user", "alice"]) == 0
    assert main(["token", "create", "--user", "ci", "--name", "ci", "--scopes", "read", "--expires", "30d",
                 "--json"]) == 0
    assert main(["token", "list", "--json"]) == 0
    assert main(["token", "revoke", "--user", "alice"]) == 0
    assert main(["token", "revoke", "--id", "t1", "--json"]) == 0
    assert main(["token", "revoke"]) == 2
    for key in list(sys.modules):
        if key.startswith("fake:"):
            del sys.modules[key]
    assert calls == [
        ("trainyard.client.local_run.run_command", ("s.json",), {"save": None, "quiet": True, "as_json": None}),
        ("trainyard.api.embedded.up", (), {"host": "127.0.0.1", "port": 8000}),
        ("trainyard.api.serve.serve", (), {"host": "0.0.0.0", "port": 9000, "workers": 3}),
        ("trainyard.worker.main.run_worker", (), {"queues": ["cpu", "gpu"], "concurrency": 2}),
        ("trainyard.worker.reconciler.main", (), {}), ("trainyard.store.migrate.main", (), {}),
        ("trainyard.store.token_commands.create_token_cli", ("alice",),
         {"name": None, "scopes": "read,write", "expires": None, "as_json": False, "create_database": False}),
        ("trainyard.store.token_commands.create_token_cli", ("ci",),
         {"name": "ci", "scopes": "read", "expires": "30d", "as_json": True, "create_database": False}),
        ("trainyard.store.token_commands.list_tokens_cli", (None,), {"as_json": True}),
        ("trainyard.store.token_commands.revoke_token_cli", (None, "alice"), {"token_id": None, "name": None, "as_json": False}),
        ("trainyard.store.token_commands.revoke_token_cli", (None, None), {"token_id": "t1", "name": None, "as_json": True}),
    ]


def test_a_missing_service_module_is_a_clear_error(capsys):
    from trainyard.client.service import call

    assert call("no_such_package.module", "main") == 1
    assert "no_such_package.module.main is not available" in capsys.readouterr().err


def test_the_client_imports_none_of_the_service_packages():
    code = ("import sys, trainyard.client, trainyard.client.cli; "
            "top = {'.'.join(m.split('.')[:2]) if m.startswith('trainyard.') else m.split('.')[0] for m in sys.modules}; "
            "print(sorted(top & {'trainyard.core', 'trainyard.store', 'trainyard.api', 'trainyard.worker', "
            "'numpy', 'flask', 'sqlalchemy', 'celery'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[2])
    assert result.stdout.strip() == "[]"


def test_the_console_script_runs(fake, fake_api, spec_file):
    script = Path(sys.executable).with_name("trainyard")
    env = {"TRAINYARD_URL": fake.url, "TRAINYARD_TOKEN": "t", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(script), "submit", spec_file(), "--wait", "--json"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "succeeded"


def test_bad_spec_and_inputs_files_exit_2(cli, tmp_path, spec_file):
    (tmp_path / "broken.json").write_text("{not json")
    code, _, err = cli("submit", str(tmp_path / "broken.json"))
    assert code == 2 and "broken.json is not JSON" in err
    cli("submit", spec_file(), "--wait", "--quiet")
    code, _, err = cli("predict", "j1", "--inputs", "[[0, 1]")
    assert code == 2 and "--inputs" in err
    code, _, err = cli("predict", "j1", "--inputs", str(tmp_path / "nothere.csv"))
    assert code == 2 and "No such file" in err


def test_trainyard_run_goes_to_core(tmp_path):
    script = Path(sys.executable).with_name("trainyard")
    spec = Path(__file__).parents[2] / "examples" / "and_perceptron.json"
    result = subprocess.run([str(script), "run", str(spec), "--quiet", "--save", str(tmp_path / "and.npz")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "succeeded"
    assert (tmp_path / "and.npz").stat().st_size > 0


def test_an_unwritable_output_file_exits_1(cli, spec_file, tmp_path):
    cli("submit", spec_file(), "--wait", "--quiet")
    code, out, err = cli("download", "j1", "-o", str(tmp_path / "no" / "such" / "dir.npz"), "--json")
    assert code == 1 and "No such file or directory" in err and "error" in last_json(out)


def test_a_closed_pipe_is_not_a_traceback(fake, fake_api):
    script = Path(sys.executable).with_name("trainyard")
    env = {"TRAINYARD_URL": fake.url, "TRAINYARD_TOKEN": "t", "PATH": "/usr/bin:/bin"}
    fake_api.jobs.update({f"j{n}": {"id": f"j{n}", "status": "succeeded"} for n in range(20000)})
    result = subprocess.run(f"{script} list --limit 20000 | head -1", shell=True, capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.stdout.split() == ["ID", "NAME", "STATUS", "BACKEND", "DEVICE", "PROGRESS", "CREATED"]
    assert "Traceback" not in result.stderr
