"""The PNG line chart of `history --plot`: a valid PNG whose pixels show each curve."""

from __future__ import annotations

import struct
import zlib

from client.plot import TRAIN_COLOR, VAL_COLOR, nice_ticks, render_history


def decode(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an unfiltered 8-bit RGB PNG; checks every chunk's CRC."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + data
        pos += 12 + length
    assert list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color_type) == (8, 2)
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 3 * width + 1
    assert len(raw) == stride * height
    rows = [raw[y * stride:(y + 1) * stride] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, [row[1:] for row in rows]


def count(rows: list[bytes], color: tuple[int, int, int]) -> int:
    needle = bytes(color)
    return sum(1 for row in rows for x in range(0, len(row), 3) if row[x:x + 3] == needle)


def test_loss_and_metric_panels_with_validation_curves():
    history = [{"epoch": e, "loss": 1 / e, "accuracy": min(1.0, e / 50), "val_loss": 1.2 / e,
                "val_accuracy": None if e == 10 else e / 60, "time": e / 10} for e in range(1, 101)]
    width, height, rows = decode(render_history(history, title="xor j1"))
    assert (width, height) == (900, 30 + 2 * 320)
    top, bottom = rows[:350], rows[350:]
    assert count(top, TRAIN_COLOR) > 500 and count(top, VAL_COLOR) > 500
    assert count(bottom, TRAIN_COLOR) > 500 and count(bottom, VAL_COLOR) > 500


def test_one_epoch_and_no_epochs_still_draw():
    _, _, rows = decode(render_history([{"epoch": 1, "loss": 0.5}]))
    assert count(rows, TRAIN_COLOR) >= 25
    width, height, _ = decode(render_history([]))
    assert (width, height) == (900, 320)


def test_nice_ticks_cover_the_range():
    assert nice_ticks(0.013, 0.27) == [0.0, 0.1, 0.2, 0.3]
    assert nice_ticks(1, 1000) == [0, 200, 400, 600, 800, 1000]
    assert nice_ticks(0.5, 0.5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
