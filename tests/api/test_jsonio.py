"""trainyard.api.jsonio: the bounded request-body parser and the iterative walk behind it (no recursion at any depth)."""

from __future__ import annotations

import pytest

from trainyard.api.errors import ApiError
from trainyard.api.jsonio import bad_text, containers, non_finite, parse_json
from trainyard.store.settings import Settings

SETTINGS = Settings(max_json_depth=4, max_json_digits=5)


def errors(body: bytes, **kw) -> list[dict]:
    with pytest.raises(ApiError) as caught:
        parse_json(body, SETTINGS, what="a thing", **kw)
    assert caught.value.status == 422
    return caught.value.errors


def test_documents_within_the_limits_parse_as_json():
    assert parse_json(b'{"a": [[1, 2.5, "x", null, true]], "b": -99999}', SETTINGS, what="") == {
        "a": [[1, 2.5, "x", None, True]], "b": -99999}
    assert parse_json('{"é": 1}'.encode("utf-16"), SETTINGS, what="") == {"é": 1}  # as json.loads detects it
    assert parse_json(b"1e400", SETTINGS, what="") == float("inf")  # floats: non_finite's job


def test_bodies_that_are_not_json_say_why():
    assert errors(b"  ") == [{"loc": "", "msg": "the body is empty; send a thing"}]
    assert errors(b"\xff\xfe\xfa") == [{"loc": "", "msg": "the body is not UTF-8 text; send a thing"}]
    assert errors(b'{"a":\n 1,}') == [{"loc": "", "msg": "the body is not valid JSON: Expecting property name "
                                                         "enclosed in double quotes at line 2 column 4"}]


def test_depth_digits_items_and_text_are_refused_with_where():
    assert errors(b'{"a": [[[[1]]]]}') == [{"loc": "a[0][0][0]", "msg": "nested deeper than 4 levels (max_json_depth)"}]
    assert errors(b'"[[[" ' + b"[" * 3000 + b"]" * 3000) == [
        {"loc": "", "msg": "the body is not valid JSON: Extra data at line 1 column 7"}]
    assert errors(b'{"s": "[[[[", "a": ' + b"[" * 3000 + b"]" * 3000 + b"}") == [
        {"loc": "", "msg": "the JSON document is nested deeper than 4 levels (max_json_depth) at line 1 column 23"}]
    assert errors(b'{"a": [1, 123456, -123456]}') == [
        {"loc": "a[1]", "msg": "an integer of 6 digits is over the limit of 5 digits (max_json_digits)"},
        {"loc": "a[2]", "msg": "an integer of 6 digits is over the limit of 5 digits (max_json_digits)"}]
    assert errors(b'{"x": "12345678",\n "a": 1.5e3, "b": ' + b"1" * 5000 + b"}") == [
        {"loc": "", "msg": "an integer has more than 5 digits (max_json_digits) at line 2 column 19"}]
    assert errors(b'{"a": [1, 2], "b": {"c": 3}}', max_items=5) == [
        {"loc": "", "msg": "the document has more than 5 values (max_spec_items)"}]
    assert errors(b'{"a\\u0000": ["ok", "\\ud800"]}') == [
        {"loc": "a\\x00", "msg": "the key contains the character U+0000 (NUL), which cannot be stored"},
        {"loc": "a\x00[1]", "msg": "contains a lone surrogate (U+D800 to U+DFFF): not Unicode text, which cannot be "
                                   "stored"}]
    assert errors(b'"\\u0000"') == [{"loc": "", "msg": bad_text("\x00")}]


def test_the_walk_and_non_finite_need_no_recursion_at_any_depth():
    doc: list = [float("nan")]
    for _ in range(5000):  # five times Python's recursion limit
        doc = [doc, 1.0]
    assert len(non_finite(doc)) == 1 and non_finite(doc)[0].endswith("[0][0][0]")
    assert max(depth for _, depth, _, _ in containers(doc)) == 5001
    assert non_finite({"a": [1.0, float("inf")], "b": {"c": -float("inf")}}) == ["a[1]", "b.c"]
    assert non_finite(float("nan")) == [""]
