"""JSON in and out: request bodies parsed within bounds (422s that say where), responses without bare NaN/Infinity
(core.jsonsafe.json_safe, the one helper the store and `trainyard run` use too)."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Iterator

from flask.json.provider import DefaultJSONProvider

from trainyard.api.errors import MAX_ERRORS, ApiError, invalid
from trainyard.core.jsonsafe import json_safe
from trainyard.store.settings import Settings

# A string token, or a bracket (outside strings): enough to follow nesting on the error path.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_BRACKETS = re.compile(_STRING + r'|[\[\]{}]')
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(body: bytes, settings: Settings, *, what: str, max_items: int | None = None) -> Any:
    """The JSON document in a request body, or a 422 that says what is wrong and where.

    Refused: a body that is empty, not UTF-8/16/32 text or not JSON (line and column); nesting deeper than
    `max_json_depth`; an integer of more than `max_json_digits` digits; more than `max_items` values in all
    (max_spec_items: a spec's limit; predict bodies are bounded by their size alone); text no database can
    store (U+0000, a lone surrogate). Bounded work: Python's parser stops at its recursion limit, and the scan
    of the parsed document stops at the first container past the depth or item limit.

    Args:
        what: what the body should be, for the messages ("a JSON job spec").
    """
    text = _text(body, what)
    depth, digits = settings.max_json_depth, settings.max_json_digits
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # nested past Python's recursion limit, far past ours
        raise _error(f"the JSON document is nested deeper than {depth} levels (max_json_depth) "
                     f"at {_position(text, _too_deep(text, depth))}") from None
    except ValueError:  # an integer past sys.get_int_max_str_digits(), far past ours
        raise _error(f"an integer has more than {digits} digits (max_json_digits) "
                     f"at {_position(text, _long_integer(text, digits))}") from None
    errors = _scan(doc, max_depth=depth, max_digits=digits, max_items=max_items)
    if errors:
        raise invalid(errors)
    return doc


def _error(msg: str) -> ApiError:
    return invalid([{"loc": "", "msg": msg}])


def _text(body: bytes, what: str) -> str:
    """The body as text in the encoding JSON allows (UTF-8, -16 or -32, detected as `json.loads` does)."""
    try:
        text = body.decode(json.detect_encoding(body))
    except UnicodeDecodeError:
        raise _error(f"the body is not UTF-8 text; send {what}") from None
    if not text.strip():
        raise _error(f"the body is empty; send {what}")
    return text


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    return f"line {line} column {index - text.rfind(chr(10), 0, index)}"


def _too_deep(text: str, max_depth: int) -> int:
    """Where the first bracket past `max_depth` opens (only called once the parser has failed)."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                return match.start()
        elif token in "]}":
            depth -= 1
    return len(text)


def _long_integer(text: str, max_digits: int) -> int:
    """Where the first integer longer than `max_digits` digits starts, outside strings."""
    pattern = re.compile(_STRING + r'|(?<![0-9.eE+-])-?[0-9]{%d,}(?![0-9.eE])' % (max_digits + 1))
    for match in pattern.finditer(text):
        if not match.group().startswith('"'):
            return match.start()
    return len(text)


def child_loc(loc: str, key: str | int) -> str:
    """The path of a member: `model.layers[0]` + `units` → `model.layers[0].units`."""
    if isinstance(key, int):
        return f"{loc}[{key}]"
    return f"{loc}.{key}" if loc else str(key)


def _members(node: dict | list):
    return node.items() if isinstance(node, dict) else enumerate(node)


def containers(doc: Any) -> Iterator[tuple[str, int, dict | list, set[type]]]:
    """Every object and array of a parsed JSON document, parents first, as `(path, depth, node, member types)`.

    Iterative (no recursion, whatever the depth). The document itself is the only member of a holder at
    depth 0, so a bare scalar document is seen too.
    """
    stack: list[tuple[str, int, dict | list]] = [("", 0, {"": doc})]
    while stack:
        loc, depth, node = stack.pop()
        values = node.values() if isinstance(node, dict) else node
        kinds = set(map(type, values))
        yield loc, depth, node, kinds
        if dict in kinds or list in kinds:
            nested = [(child_loc(loc, k), depth + 1, v) for k, v in _members(node)
                      if type(v) in (dict, list)]
            stack.extend(reversed(nested))


def _scan(doc: Any, *, max_depth: int, max_digits: int, max_items: int | None) -> list[dict]:
    """The depth and item limits (raised at once), then every integer too long and every string no database can
    store (collected, up to the MAX_ERRORS a problem lists)."""
    errors: list[dict] = []
    items, bound = 0, 10 ** max_digits
    for loc, depth, node, kinds in containers(doc):
        if depth > max_depth:
            raise invalid([{"loc": loc, "msg": f"nested deeper than {max_depth} levels (max_json_depth)"}])
        items += len(node)
        if max_items is not None and items > max_items:
            raise _error(f"the document has more than {max_items:,} values (max_spec_items)")
        if int in kinds and not _within(node, kinds, bound):
            errors += [{"loc": child_loc(loc, k),
                        "msg": f"an integer of {len(str(abs(v)))} digits is over the limit of {max_digits} digits "
                               "(max_json_digits)"}
                       for k, v in _members(node) if type(v) is int and not -bound < v < bound]
        if str in kinds:
            errors += [{"loc": child_loc(loc, k), "msg": why}
                       for k, v in _members(node) if type(v) is str and (why := bad_text(v))]
        if isinstance(node, dict) and depth:
            errors += [{"loc": child_loc(loc, escaped(k)), "msg": f"the key {why}"}
                       for k in node if (why := bad_text(k))]
        if len(errors) >= MAX_ERRORS:
            break
    return errors


def _within(node: dict | list, kinds: set[type], bound: int) -> bool:
    """Whether every number of an all-number container is within ±bound, at C speed (min and max); False sends
    the caller to the member-by-member check."""
    if not kinds <= {int, float}:
        return False
    values = node.values() if isinstance(node, dict) else node
    return -bound < min(values) and max(values) < bound  # a NaN compares False: the slow path decides


def bad_text(text: str) -> str | None:
    """Why no database can store `text` (PostgreSQL refuses U+0000 in text and JSON; a lone surrogate is not
    Unicode), or None."""
    if "\x00" in text:
        return "contains the character U+0000 (NUL), which cannot be stored"
    if _SURROGATE.search(text):
        return "contains a lone surrogate (U+D800 to U+DFFF): not Unicode text, which cannot be stored"
    return None


def escaped(text: str) -> str:
    """`text` as ASCII with Python escapes (`a\\x00b`): a name holding characters that cannot be shown or stored."""
    return text.encode("unicode_escape").decode("ascii")


def non_finite(value: Any) -> list[str]:
    """Paths (`model.layers[0].kernel_initializer.mean`) of the NaN/Infinity numbers in a parsed JSON document.

    Python's JSON parser accepts these non-standard tokens; the API refuses them rather than store them.
    """
    return [child_loc(loc, k)
            for loc, depth, node, kinds in containers(value) if float in kinds
            for k, v in _members(node) if type(v) is float and not math.isfinite(v)]


def dumps(value: Any) -> str:
    """Strict JSON: raises rather than emitting NaN (json_safe() has already removed them)."""
    return json.dumps(json_safe(value), allow_nan=False, separators=(",", ":"), ensure_ascii=False)


class FiniteJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with `json_safe()` applied to every response body."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(json_safe(obj), **kwargs)
