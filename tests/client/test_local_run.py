"""`trainyard run`: trains in-process; the result JSON is always the last stdout line; exit 0/1/2."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainyard.client.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(capsys, *args):
    code = main(["run", *map(str, args)])
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


def test_and_perceptron_trains_saves_and_predicts(capsys, tmp_path):
    from trainyard.core.backends import load_predictor

    model = tmp_path / "and.npz"
    code, result, err = run(capsys, EXAMPLES / "and_perceptron.json", "--save", model)
    assert code == 0 and result["status"] == "succeeded" and result["error"] is None
    assert result["metrics"]["accuracy"] == 1.0
    assert [row["epoch"] for row in result["history"]] == list(range(1, 21))
    assert result["spec"]["training"]["optimizer"] == {"name": "perceptron", "learning_rate": 1.0}
    assert set(result["versions"]) >= {"trainyard", "python", "numpy"}
    assert "epoch 20/20" in err  # the progress bar, drawn on stderr
    predictor = load_predictor(model.read_bytes())
    assert predictor.predict(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)).tolist() == [0, 0, 0, 1]


def test_quiet_prints_only_the_result(capsys):
    code, result, err = run(capsys, EXAMPLES / "or_perceptron.json", "--quiet")
    assert code == 0 and result["metrics"]["accuracy"] == 1.0 and err == ""


def test_an_invalid_spec_still_prints_a_result_and_exits_1(capsys, tmp_path):
    spec = json.loads((EXAMPLES / "xor_relu.json").read_text())
    spec["model"]["layers"][1]["activation"] = "swish"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    code, result, err = run(capsys, path)
    assert code == 1 and result["status"] == "failed"
    assert result["error"]["code"] == "invalid_spec"
    assert result["error"]["errors"][0]["loc"] == "model.layers[1].activation"
    assert "unknown activation 'swish'" in err


@pytest.mark.parametrize("content, message, error", [(None, "cannot read spec file", "spec_file_error"),
                                                     ("{not json", "is not valid JSON", "invalid_spec")])
def test_unreadable_spec_files_are_usage_errors(capsys, tmp_path, content, message, error):
    path = tmp_path / "spec.json"
    if content is not None:
        path.write_text(content)
    code, result, _ = run(capsys, path, "--quiet")
    assert code == 2 and result["error"]["code"] == error and message in result["error"]["message"]


@pytest.mark.parametrize("save, message", [("missing/m.npz", "does not exist"), (".", "is a directory")])
def test_an_unwritable_save_path_is_refused_before_training(capsys, tmp_path, monkeypatch, save, message):
    monkeypatch.chdir(tmp_path)
    code, result, _ = run(capsys, EXAMPLES / "and_perceptron.json", "--quiet", "--save", save)
    assert code == 2 and message in result["error"]["message"] and result["history"] == []
    assert result["error"]["code"] == "invalid_save_path"  # the spec is fine: not invalid_spec


def test_an_early_stop_still_draws_the_last_epoch(capsys, tmp_path):
    spec = json.loads((EXAMPLES / "digits_32.json").read_text())
    spec["training"].update(epochs=400, early_stopping={"monitor": "val_loss", "patience": 2})
    path = tmp_path / "early.json"
    path.write_text(json.dumps(spec))
    code, result, err = run(capsys, path)
    last = len(result["history"])
    assert code == 0 and last < 400
    assert f"epoch {last}/400" in err.splitlines()[-1]


def test_a_diverging_job_fails_with_its_epoch(capsys, tmp_path):
    spec = {"dataset": {"builtin": "diabetes", "test_split": 0},
            "model": {"layers": [{"type": "dense", "units": 1, "kernel_initializer": {"name": "constant", "value": 1e3}}]},
            "training": {"optimizer": {"name": "sgd", "learning_rate": 1e6}, "epochs": 50, "seed": 1}}
    path = tmp_path / "diverge.json"
    path.write_text(json.dumps(spec))
    code, result, _ = run(capsys, path, "--quiet")
    assert code == 1 and result["error"]["code"] == "diverged"
    assert result["error"]["epoch"] == len(result["history"]) + 1  # every finished epoch is reported


def test_data_paths_are_relative_to_the_spec_file(tmp_path):
    # Run from another directory, as a console script in a subprocess.
    exe = shutil.which("trainyard", path=str(Path(sys.executable).parent))
    proc = subprocess.run([exe, "run", str(EXAMPLES / "cheese_festival.json"), "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, result
    assert result["metrics"]["accuracy"] == 1.0
    assert result["spec"]["dataset"]["task"] == "classification"


def test_an_unexpected_error_still_ends_with_the_result_line(capsys, tmp_path, monkeypatch):
    import trainyard.core.job

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trainyard.core.job, "train_job", broken)
    code, result, err = run(capsys, EXAMPLES / "and_perceptron.json", "--quiet")
    assert code == 1 and result["status"] == "failed"
    assert result["error"] == {"code": "internal", "message": "OSError: [Errno 28] No space left on device"}
    assert "Traceback" in err


def test_bad_usage_exits_2(capsys):
    assert main(["run"]) == 2
    assert "the following arguments are required: SPEC.json" in capsys.readouterr().err


def test_at_a_terminal_run_prints_a_summary_and_json_on_request(capsys, monkeypatch, tmp_path):
    """At a terminal the 91 KB result line was all a person saw; scripts (a pipe) and --json keep the JSON line."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    model = tmp_path / "and.npz"
    code = main(["run", str(EXAMPLES / "and_perceptron.json"), "--save", str(model)])
    out = capsys.readouterr().out
    assert code == 0 and "{" not in out
    lines = out.splitlines()
    assert re.fullmatch(r"and_perceptron: succeeded after 20 epochs in [0-9.]+ s", lines[0])
    assert "accuracy 1.0000" in lines[1]
    assert lines[2] == f"  model saved to {model}"
    assert "trainyard run --json" in lines[-1]
    assert main(["run", str(EXAMPLES / "and_perceptron.json"), "--quiet", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and result["stop_reason"] is None


def test_a_converged_sklearn_run_says_it_stopped_early_and_why(capsys, monkeypatch, tmp_path):
    spec = {"backend": "sklearn", "dataset": {"builtin": "iris", "scale": "standard"},
            "model": {"layers": [{"type": "dense", "units": 3, "activation": "softmax"}]},
            "training": {"epochs": 500, "seed": 1}, "backend_options": {"tol": 0.05, "n_iter_no_change": 2}}
    path = tmp_path / "converges.json"
    path.write_text(json.dumps(spec))
    code, result, err = run(capsys, path)
    trained = len(result["history"])
    assert code == 0 and trained < 500
    reason = (f"stopped early at epoch {trained} of 500: the training loss improved by less than tol=0.05 for "
              "n_iter_no_change=2 epochs in a row (scikit-learn's convergence rule; lower backend_options.tol or "
              "raise n_iter_no_change to train longer)")
    assert result["stop_reason"] == reason
    assert f"epoch {trained}/500" in err.splitlines()[-1] and "(converged: stopped early)" in err.splitlines()[-1]
    assert "ETA" not in err.splitlines()[-1]
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["run", str(path), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"  {reason}"


def test_a_missing_data_file_names_the_path_it_looked_for(capsys, tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "wine.json"
    spec.write_text(json.dumps({"dataset": {"path": "wine.csv"}, "model": {"layers": [{"type": "dense", "units": 1}]}}))
    monkeypatch.chdir(tmp_path)
    code, result, _ = run(capsys, "specs/wine.json", "--quiet")
    assert code == 1 and result["error"] == {
        "code": "dataset_error", "message": f"dataset.path 'wine.csv': no such file {tmp_path / 'specs' / 'wine.csv'} "
                                            "(a relative path is relative to the spec file's folder)"}
