"""Hostile input is a 4xx that says where, never a 500 (red-team finding 7: #7b, 11, 12, 15, 30, 45, 50, 55).

- JSON nested past `max_json_depth` or with an integer past `max_json_digits`, in a spec or a predict body;
- a spec with more values than `max_spec_items` is refused before it is validated, and a 422 lists at most
  100 errors however many the document holds;
- text PostgreSQL cannot store (U+0000) in a path segment, query parameter, header, spec or form field, and
  integers past an INTEGER column, on SQLite and PostgreSQL alike;
- a dataset deleted while a job on it is submitted: 409 on both sides, on both databases;
- an unhandled error is one escaped, bounded log line (a path's %0A forges no line), its traceback only at DEBUG.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from urllib.parse import quote

import pytest

from trainyard.core.spec import parse_spec
from trainyard.store.datasets import create_dataset, delete_dataset
from trainyard.store.db import session_scope
from trainyard.store.jobs import create_job
from trainyard.store.models import Job
from trainyard.store.settings import SettingsError, load_settings

from tests.support import fakeworker as fake_worker, hostile
from tests.support.api import XOR_FIT, make_api, problem, xor

JSON = {"Content-Type": "application/json"}
CSV = b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"
INT_MAX = 2**31 - 1


def post_text(api, path: str, text: str):
    return api.alice.post(path, data=text, headers=JSON)


def trained(api) -> str:
    job = api.alice.submit(XOR_FIT)
    fake_worker.train(api, job["id"], XOR_FIT)
    return job["id"]


def upload(api, **fields):
    data = {"name": "d", "format": "csv", "target": "y", "file": (io.BytesIO(CSV), "d.csv"), **fields}
    return api.alice.post("/datasets", content_type="multipart/form-data", data=data)


def stored_dataset(api) -> str:
    """alice's dataset, stored as an upload would store it."""
    with session_scope(api.sessions) as s:
        return create_dataset(session=s, owner=api.alice.user_id, name="d", format="csv", data=CSV,
                              task="classification", n_samples=4, n_features=2, n_classes=2, target="y").id


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def level_65(text: str) -> str:
    """Line and column of the bracket that opens the 65th level of `text` (one object, then arrays)."""
    line = text.count("\n", 0, text.index("[")) + 1
    first = text.splitlines()[line - 1].index("[")
    return f"line {line} column {first + 64 + (0 if text.startswith('{') else 1)}"


# --- JSON depth, digits and size -----------------------------------------------------------------------------


def test_json_nested_past_max_json_depth_is_422_saying_where(api):
    # Parsed, then found too deep: named by its path (the 65th container down).
    body = problem(post_text(api, "/jobs", '{"x": ' + nested(600) + "}"), 422)
    assert body["errors"] == [{"loc": "x" + "[0]" * 63, "msg": "nested deeper than 64 levels (max_json_depth)"}]
    # Past Python's own parser limit: named by line and column (the bracket that opens level 65).
    for text in ('{"x": ' + nested(5000) + "}", nested(100_000), '{"a": 1,\n "x": ' + nested(5000) + "}"):
        body = problem(post_text(api, "/jobs", text), 422)
        assert body["errors"] == [{"loc": "", "msg": "the JSON document is nested deeper than 64 levels "
                                                     f"(max_json_depth) at {level_65(text)}"}], text[:20]
    assert api.alice.get("/jobs").get_json()["items"] == []


def test_predict_bodies_nested_past_max_json_depth_are_422(api):
    job_id = trained(api)
    text = '{"inputs": ' + nested(5000) + "}"
    assert problem(post_text(api, f"/jobs/{job_id}/predict", text), 422)["errors"] == [
        {"loc": "", "msg": f"the JSON document is nested deeper than 64 levels (max_json_depth) at {level_65(text)}"}]
    r = post_text(api, f"/jobs/{job_id}/predict", '{"inputs": [[0, ' + nested(100) + "]]}")
    assert problem(r, 422)["errors"] == [{"loc": "inputs[0][1]" + "[0]" * 61,
                                          "msg": "nested deeper than 64 levels (max_json_depth)"}]


def test_integers_past_max_json_digits_are_422_naming_where(api):
    spec = json.dumps(xor(training={"epochs": 5, "seed": 1, "batch_size": 4}))
    long = spec.replace('"seed": 1', '"seed": ' + "9" * 101)
    assert problem(post_text(api, "/jobs", long), 422)["errors"] == [
        {"loc": "training.seed", "msg": "an integer of 101 digits is over the limit of 100 digits (max_json_digits)"}]
    # Past Python's own limit (4,300 digits): where it starts.
    huge = spec.replace('"seed": 1', '"seed": ' + "9" * 5000)
    column = huge.index("9" * 5000) + 1
    assert problem(post_text(api, "/jobs", huge), 422)["errors"] == [
        {"loc": "", "msg": f"an integer has more than 100 digits (max_json_digits) at line 1 column {column}"}]
    assert post_text(api, "/jobs", spec.replace('"seed": 1', '"seed": 0' + "")).status_code == 201


@pytest.mark.parametrize("value, digits", [(10**400, 401), (-10**400, 401), (10**150, 151)])
def test_predict_integers_past_max_json_digits_are_422_naming_row_and_column(api, value, digits):
    job_id = trained(api)
    r = post_text(api, f"/jobs/{job_id}/predict", '{"inputs": [[0, 0], [1, %d]]}' % value)
    assert problem(r, 422)["errors"] == [
        {"loc": "inputs[1][1]", "msg": f"an integer of {digits} digits is over the limit of 100 digits "
                                       "(max_json_digits)"}]


def test_a_spec_with_more_values_than_max_spec_items_is_422_before_it_is_validated(api):
    spec = xor(backend_options={f"k{i}": i for i in range(200_000)})  # 2.7 MB: a million-key spec in small
    r = api.alice.post("/jobs", json=spec)
    assert problem(r, 422)["errors"] == [{"loc": "", "msg": "the document has more than 100,000 values "
                                                            "(max_spec_items)"}]
    assert len(r.data) < 1000


def test_a_422_lists_at_most_100_errors_and_counts_the_rest(api):
    r = api.alice.post("/jobs", json=xor(**{f"unknown_{i}": i for i in range(5000)}))
    body = problem(r, 422)
    assert len(body["errors"]) == 101
    assert body["errors"][:2] == [{"loc": "unknown_0", "msg": "unknown field"},
                                  {"loc": "unknown_1", "msg": "unknown field"}]
    assert body["errors"][-1] == {"loc": "", "msg": "4,900 more errors not listed (at most 100 are)"}
    assert len(body["detail"]) < 2100 and body["detail"].startswith("unknown_0: unknown field; unknown_1: ")
    assert len(r.data) < 20_000  # 5,000 errors were 400 KB


def test_the_json_limits_are_settings_read_from_the_environment_and_must_be_positive():
    settings = load_settings({"TRAINYARD_MAX_JSON_DEPTH": "8", "TRAINYARD_MAX_JSON_DIGITS": "20",
                              "TRAINYARD_MAX_SPEC_ITEMS": "500"})
    assert (settings.max_json_depth, settings.max_json_digits, settings.max_spec_items) == (8, 20, 500)
    for name in ("MAX_JSON_DEPTH", "MAX_JSON_DIGITS", "MAX_SPEC_ITEMS"):
        with pytest.raises(SettingsError, match=f"TRAINYARD_{name} must be > 0"):
            load_settings({f"TRAINYARD_{name}": "0"})


# --- text PostgreSQL cannot store, integers past their column --------------------------------------------------


def test_nul_in_a_path_segment_is_the_404_of_any_unknown_id(api_both):
    api = api_both
    rules = [(rule, method) for rule in api.app.url_map.iter_rules() if rule.arguments
             and not rule.endpoint.startswith("ui.")  # the dashboard's pages: tests/ui/test_sessions.py
             for method in sorted(rule.methods - {"OPTIONS", "HEAD"})]
    assert len(rules) >= 9
    for rule, method in rules:
        assert rule.arguments <= {"job_id", "dataset_id", "sweep_id"}, f"{rule.rule}: teach this test its parameters"
        what = next(iter(rule.arguments)).removesuffix("_id")
        for ident in ("a\x00b", "x\x00\n2026-11-30 09:00:00,000 CRITICAL forged"):
            url = hostile.url_for_rule(rule, dict.fromkeys(("job_id", "dataset_id", "sweep_id"), quote(ident, safe="")))
            r = api.alice.client.open(url, method=method, headers=api.alice._headers(None))
            assert problem(r, 404)["detail"] == f"no {what} {ident!r}", (method, rule.rule)


@pytest.mark.parametrize("query, loc", [("name=a%00b", "name"), ("status=queued%00", "status"),
                                        ("backend=numpy%00", "backend"), ("cursor=a%00b", "cursor"),
                                        ("limit=5&x%00=1", "x\\x00")])
def test_nul_in_a_query_parameter_is_422_naming_it(api_both, query, loc):
    assert problem(api_both.alice.get(f"/jobs?{query}"), 422)["errors"] == [
        {"loc": loc, "msg": "the query parameter contains the character U+0000 (NUL), which cannot be stored"}]


def test_nul_inside_a_cursor_is_an_invalid_cursor(api_both):
    import base64

    cursor = base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|a\x00b").decode().rstrip("=")
    assert problem(api_both.alice.get(f"/jobs?cursor={cursor}"), 422)["errors"] == [
        {"loc": "cursor", "msg": "invalid cursor"}]


def test_nul_in_a_spec_a_header_or_a_form_field_is_422_naming_it(api_both):
    api = api_both
    nul = "contains the character U+0000 (NUL), which cannot be stored"
    cases = [
        (api.alice.post("/jobs", json=xor(name="RTL\u202e ZW\u200b NUL\x00 ANSI\x1b[31m")), "name", nul),
        (api.alice.post("/jobs", json=xor(backend_options={"a": "x\x00"})), "backend_options.a", nul),
        (api.alice.post("/jobs", json=xor(backend_options={"a\x00": 1})), "backend_options.a\\x00", f"the key {nul}"),
        (post_text(api, "/jobs", json.dumps(xor()).replace('"xor"', '"\\ud800"', 1)), "name",
         "contains a lone surrogate (U+D800 to U+DFFF): not Unicode text, which cannot be stored"),
        (api.alice.post("/jobs", json=xor(), headers={"Idempotency-Key": "a\x00b"}), "Idempotency-Key",
         f"the header {nul}"),
        (upload(api, name="RTL\u202e NUL\x00 ANSI\x1b[31m"), "name", nul),
        (upload(api, target="y\x00"), "target", nul),
    ]
    for r, loc, msg in cases:
        assert problem(r, 422)["errors"] == [{"loc": loc, "msg": msg}]
    assert api.alice.get("/jobs").get_json()["items"] == [] and api.alice.get("/datasets").get_json()["items"] == []


def test_integer_parameters_past_their_column_are_422_naming_them(api_both):
    api = api_both
    job_id = trained(api)
    for path, headers, loc in ((f"/jobs/{job_id}/history?since={INT_MAX + 1}", None, "since"),
                               (f"/jobs/{job_id}/history?since={10**20}", None, "since"),
                               (f"/jobs/{job_id}/events?since={INT_MAX + 1}", None, "since"),
                               (f"/jobs/{job_id}/events", {"Last-Event-ID": str(10**20)}, "Last-Event-ID")):
        assert problem(api.alice.get(path, headers=headers), 422)["errors"] == [
            {"loc": loc, "msg": f"must be 0 to {INT_MAX}"}], path
    for since in (INT_MAX, INT_MAX - 5):  # the largest an epoch column holds: an empty page, not an overflow
        page = api.alice.get(f"/jobs/{job_id}/history?since={since}").get_json()
        assert page["epochs"] == [] and page["has_more"] is False
    assert problem(api.alice.get(f"/jobs?limit={10**20}"), 422)["errors"][0]["loc"] == "limit"


# --- a dataset deleted while a job on it is submitted ----------------------------------------------------------


def _in_thread(call) -> tuple[threading.Thread, list]:
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    return thread, outcome


def _wait_inside(thread: threading.Thread, function) -> None:
    """Until the thread runs (or waits for a lock inside) `function`: it is past every check before that call."""
    code = function.__code__
    for _ in range(400):
        frame = sys._current_frames().get(thread.ident)
        while frame is not None and frame.f_code is not code:
            frame = frame.f_back
        if frame is not None:
            return
        thread.join(0.05)
    raise AssertionError(f"the request never reached {function.__qualname__}")


def test_a_submit_whose_dataset_is_deleted_meanwhile_is_409(api_both):
    api = api_both
    dataset_id = stored_dataset(api)
    deleting = api.sessions()
    delete_dataset(session=deleting, owner=api.alice.user_id, dataset_id=dataset_id)  # held open
    try:
        thread, outcome = _in_thread(lambda: api.alice.post("/jobs", json=xor(dataset={"id": dataset_id})))
        _wait_inside(thread, create_job)  # validated against the dataset, which is still there
        deleting.commit()
    finally:
        deleting.close()
    thread.join(30)
    body = problem(outcome[0], 409)
    assert body["detail"] == (f"dataset {dataset_id!r} was deleted while this job was being submitted; "
                              "it is not submitted")
    assert api.alice.get("/jobs").get_json()["items"] == [] and api.alice.get("/datasets").get_json()["items"] == []


def test_a_dataset_deleted_while_a_job_on_it_is_submitted_is_409(api_both):
    api = api_both
    dataset_id = stored_dataset(api)
    spec = parse_spec({"dataset": {"id": dataset_id}, "model": {"layers": [{"type": "dense", "units": 1}]}})
    submitting = api.sessions()
    job, _ = create_job(session=submitting, owner=api.alice.user_id, spec=spec)  # held open
    try:
        thread, outcome = _in_thread(lambda: api.alice.delete(f"/datasets/{dataset_id}"))
        _wait_inside(thread, delete_dataset)
        submitting.commit()
    finally:
        submitting.close()
    thread.join(30)
    assert problem(outcome[0], 409)["detail"] == f"dataset {dataset_id} is used by job {job.id}, which is not finished"
    assert api.alice.get(f"/datasets/{dataset_id}").status_code == 200
    with session_scope(api.sessions) as s:
        assert s.get(Job, job.id).dataset_id == dataset_id


# --- the log ----------------------------------------------------------------------------------------------------

FORGED = "2026-11-30 09:00:00,000 CRITICAL api: admin token leaked: ty_FAKE"


def test_an_unhandled_error_is_one_escaped_bounded_log_line(api, caplog):
    def recurse(depth: int = 0) -> int:
        return recurse(depth + 1)

    api.app.add_url_rule("/api/v1/boom/<rest>", "boom", lambda rest: recurse())
    caplog.set_level(logging.INFO, logger="trainyard.api.errors")
    r = api.alice.get("/boom/x%0A" + quote(FORGED) + "%0D%1B[31m")
    assert problem(r, 500)["detail"] == "internal error; the server log has the details"
    [record] = [rec for rec in caplog.records if rec.name == "trainyard.api.errors"]
    line = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s").format(record)
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and len(line) < 2000
    assert record.getMessage().startswith(f"unhandled error on GET /api/v1/boom/x\\n{FORGED}\\r\\x1b[31m: "
                                          "RecursionError: maximum recursion depth exceeded")
    assert record.getMessage().count("in recurse") == 3  # the innermost frames, not a thousand


def test_the_traceback_of_an_unhandled_error_is_logged_only_at_debug(api, caplog):
    api.app.add_url_rule("/api/v1/boom", "boom", lambda: {}["missing"])
    caplog.set_level(logging.DEBUG, logger="trainyard.api.errors")
    problem(api.alice.get("/boom"), 500)
    error, debug = [rec for rec in caplog.records if rec.name == "trainyard.api.errors"]
    assert error.getMessage().startswith("unhandled error on GET /api/v1/boom: KeyError: 'missing' [at ")
    assert debug.levelno == logging.DEBUG and debug.exc_info[0] is KeyError


def test_predict_integers_past_float_range_are_422_even_where_max_json_digits_allows_them(sqlite_settings):
    api = make_api(sqlite_settings, max_json_digits=1000)
    try:
        r = post_text(api, f"/jobs/{trained(api)}/predict", '{"inputs": [[0, 0], [1, -%d]]}' % 10**400)
        assert problem(r, 422)["errors"] == [
            {"loc": "inputs[1][1]", "msg": "an integer of 401 digits is too large for a floating-point feature"}]
    finally:
        api.engine.dispose()
