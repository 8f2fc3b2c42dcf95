"""trainyard.api.logtext: request text on one log line (control characters escaped, length bounded), errors as one line."""

from __future__ import annotations

from trainyard.api.logtext import loggable, one_line


def test_loggable_escapes_every_character_that_could_start_or_disguise_a_line():
    assert loggable("/jobs/x\x00\n2026 CRITICAL forged\r\x1b[31m\u2028\u202e") == (
        "/jobs/x\\x00\\n2026 CRITICAL forged\\r\\x1b[31m\\u2028\\u202e")
    assert loggable("données ✓ 名前") == "données ✓ 名前"  # printable text is kept as it is


def test_loggable_keeps_a_bounded_prefix_and_counts_the_rest():
    assert loggable("a" * 1000) == "a" * 300 + "…[700 more characters]"
    assert loggable("\n" * 10, limit=4) == "\\n" * 4 + "…[6 more characters]"


def test_one_line_names_the_exception_and_its_innermost_frames():
    def inner():
        raise ValueError("bad\nvalue")

    def outer():
        inner()

    try:
        outer()
    except ValueError as exc:
        line = one_line(exc, frames=2)
    assert line.startswith("ValueError: bad\\nvalue [at api/test_logtext.py:")
    assert " in inner ← api/test_logtext.py:" in line and line.endswith(" in outer]") and "\n" not in line
    assert one_line(KeyError("k")) == "KeyError: 'k'"  # never raised: no frames
