"""The smaller first-hour stumbles of issue 13 §3, each as the CLI shows it (against the fake service)."""

from __future__ import annotations

import json

from trainyard.client.commands import parse_inputs

from tests.support.fakeserver import Reply, problem


def first(fake, method, pattern, fn):
    """A route that answers before the fake API's own ones."""
    fake.route(method, pattern, fn)
    fake.routes.insert(0, fake.routes.pop())


def test_a_csv_upload_without_target_says_which_column_it_took_and_suggests_target(cli, fake, tmp_path):
    data = tmp_path / "f.csv"
    data.write_text("label,a,b\nx,1,2\ny,3,4\n")
    first(fake, "POST", "/datasets", lambda req, m: problem(
        422, "Unprocessable Entity", "file: column 'label', row 1: 'x' is not a number",
        errors=[{"loc": "file", "msg": "column 'label', row 1: 'x' is not a number"}]))
    code, _, err = cli("datasets", "upload", str(data))
    assert code == 1
    assert ("  target: the target column defaults to the last one, 'b'; name the label column with --target COLUMN "
            "(one of label, a, b)") in err.splitlines()
    fake.routes.pop(0)
    first(fake, "POST", "/datasets", lambda req, m: Reply(201, {"id": "d1", "name": "f", "target": "b"}))
    code, _, err = cli("datasets", "upload", str(data))
    assert code == 0 and "trainyard datasets upload: the target column defaults to the last one, 'b'; --target " \
                         "COLUMN picks another" in err
    code, _, err = cli("datasets", "upload", str(data), "--target", "label")
    assert code == 0 and "defaults" not in err


def test_a_semicolon_separated_csv_gets_a_hint(cli, fake, tmp_path):
    data = tmp_path / "semi.csv"
    data.write_text("a;b;label\n1;2;x\n3;4;y\n")
    first(fake, "POST", "/datasets", lambda req, m: problem(
        422, "Unprocessable Entity", "target column 'label' is not in the CSV; its columns are: a;b;label",
        errors=[{"loc": "target", "msg": "target column 'label' is not in the CSV; its columns are: a;b;label"}]))
    code, _, err = cli("datasets", "upload", str(data), "--target", "label")
    assert code == 1 and ("  file: the header has one column with ';' in it: trainyard reads comma-separated files; "
                          "convert it to commas") in err.splitlines()


def test_a_missing_file_is_bad_usage_everywhere(cli, tmp_path):
    missing = str(tmp_path / "nothere.csv")
    codes = {cli("datasets", "upload", missing)[0], cli("submit", missing)[0],
             cli("predict", "j1", "--inputs", missing)[0]}
    assert codes == {2}
    assert cli("datasets", "upload", missing)[2] == f"trainyard datasets: {missing}: no such file\n"


def test_predict_inputs_a_flat_row_or_a_bare_list_say_what_to_give():
    assert parse_inputs("[0,1]", lambda: 2) == [[0, 1]]  # one row of the model's two features
    assert parse_inputs("[0,1]", lambda: None) == [[0, 1]]
    assert parse_inputs("[0,1]", lambda: 1) == [[0], [1]]  # a one-feature model: one value per row
    assert parse_inputs("[[0,1],[1,1]]") == [[0, 1], [1, 1]]
    try:
        parse_inputs("0,1")
    except ValueError as exc:
        assert str(exc) == ("'0,1' is not a JSON array: give rows of features as JSON (e.g. '[[0,1],[1,1]]' for two "
                            "rows of two features), or a .json or .csv file")
    else:
        raise AssertionError("0,1 was accepted")


def test_predict_with_a_flat_row_sends_one_row(cli, fake_api, fake):
    first(fake, "GET", "/jobs/j9", lambda req, m: Reply(200, {"id": "j9", "spec": {"dataset": {"builtin": "xor"}}}))
    first(fake, "GET", "/catalog", lambda req, m: Reply(200, {"datasets": {"xor": {"n_features": 2}}}))
    first(fake, "POST", "/jobs/j9/predict", lambda req, m: Reply(200, {"predictions": [1], "classes": [0, 1],
                                                                     "probabilities": [[0.3, 0.7]]}))
    code, out, err = cli("predict", "j9", "--inputs", "[0,1]", "--json")
    assert code == 0, err
    assert fake.calls("POST", "/jobs/j9/predict")[-1].json() == {"inputs": [[0, 1]]}
    assert json.loads(out.splitlines()[-1])["predictions"] == [1]
    code, _, err = cli("predict", "j9", "--inputs", "0,1")
    assert code == 2 and "is not a JSON array" in err and "[[0,1],[1,1]]" in err


def test_list_limit_0_is_refused_as_the_api_refuses_it(cli):
    code, _, err = cli("list", "--limit", "0")
    assert code == 2 and "argument --limit: must be 1 or more, got 0" in err


def test_download_into_a_missing_folder_names_the_file_not_its_part(cli, fake, tmp_path):
    first(fake, "GET", "/jobs/j1/model", lambda req, m: Reply(200, b"model-bytes", {
        "Content-Type": "application/octet-stream", "Content-Disposition": 'attachment; filename="j1.npz"'}))
    target = tmp_path / "no" / "dir" / "m.npz"
    code, _, err = cli("download", "j1", "-o", str(target))
    assert code == 1 and ".part" not in err
    assert f"folder {str(target.parent)!r} does not exist" in err and str(target) in err
    ok = tmp_path / "m.npz"
    assert cli("download", "j1", "-o", str(ok))[0] == 0 and ok.read_bytes() == b"model-bytes"


def test_help_texts_name_positionals_defaults_and_up_options(capsys):
    from trainyard.client.cli import main

    for argv, wanted in ((["status", "--help"], "the job's id"), (["submit", "--help"], "the job spec file"),
                         (["up", "--help"], "TRAINYARD_HOME (default ./var"), (["up", "--help"], "(default 8000)"),
                         (["datasets", "upload", "--help"], "(default: its last column)"),
                         (["list", "--help"], "exactly this name"), (["run", "--help"], "exit codes"),
                         (["token", "create", "--help"], "--create-database"), (["migrate", "--help"], "TRAINYARD_")):
        assert main(argv) == 0
        assert wanted in " ".join(capsys.readouterr().out.split()), (argv, wanted)


def test_submitting_a_local_file_twice_uploads_it_once_and_names_it_as_datasets_upload_does(cli, fake, fake_api,
                                                                                             tmp_path):
    (tmp_path / "wine.csv").write_text("a,label\n1,x\n2,y\n")
    spec = {"name": "w", "dataset": {"path": "wine.csv", "target": "label"}, "training": {"epochs": 1}}
    (tmp_path / "w.json").write_text(json.dumps(spec))
    code, _, err = cli("submit", str(tmp_path / "w.json"))
    assert code == 0 and "uploaded wine.csv as dataset d1" in err
    assert fake_api.datasets["d1"]["name"] == "wine"  # as `datasets upload wine.csv` names it
    code, _, err = cli("submit", str(tmp_path / "w.json"))
    assert code == 0 and "wine.csv: reusing dataset d1, uploaded before with the same bytes" in err
    assert len(fake.calls("POST", "/datasets")) == 1
    spec["model"] = {"layers": [{"activation": "bogus"}]}  # refused: the dataset it reused is kept
    (tmp_path / "w.json").write_text(json.dumps(spec))
    assert cli("submit", str(tmp_path / "w.json"))[0] == 1
    assert not fake.calls("DELETE", "/datasets/d1") and "d1" in fake_api.datasets


def test_history_plot_refuses_a_file_name_whose_format_it_cannot_write(cli, tmp_path):
    code, _, err = cli("history", "j1", "--plot", str(tmp_path / "curves.jpg"))
    assert code == 2 and "must end in .png, .svg or .pdf" in err and not (tmp_path / "curves.jpg").exists()
