"""`history --plot`: loss and metric curves drawn into a PNG with only zlib and struct (no matplotlib)."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Any, Sequence

from client.font import HEIGHT as GLYPH_H, WIDTH as GLYPH_W, glyph

Color = tuple[int, int, int]
WHITE, BLACK, GRID, AXIS = (255, 255, 255), (0, 0, 0), (225, 225, 225), (90, 90, 90)
TRAIN_COLOR, VAL_COLOR = (31, 119, 180), (255, 127, 14)  # matplotlib's first two colours


class Canvas:
    """An RGB pixel buffer with lines, rectangles and text."""

    def __init__(self, width: int, height: int, background: Color = WHITE):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def set(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = 3 * (y * self.width + x)
            self.pixels[i:i + 3] = bytes(color)

    def get(self, x: int, y: int) -> Color:
        i = 3 * (y * self.width + x)
        return tuple(self.pixels[i:i + 3])  # type: ignore[return-value]

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill the rectangle with corners (x0, y0) and (x1, y1), inclusive."""
        for y in range(max(0, min(y0, y1)), min(self.height, max(y0, y1) + 1)):
            for x in range(max(0, min(x0, x1)), min(self.width, max(x0, x1) + 1)):
                self.set(x, y, color)

    def line(self, x0: float, y0: float, x1: float, y1: float, color: Color, thickness: int = 1) -> None:
        """A straight line (sampled every half pixel), `thickness` pixels wide."""
        steps = max(1, int(2 * max(abs(x1 - x0), abs(y1 - y0))))
        half = thickness // 2
        for i in range(steps + 1):
            x = round(x0 + (x1 - x0) * i / steps)
            y = round(y0 + (y1 - y0) * i / steps)
            for dy in range(-half, thickness - half):
                for dx in range(-half, thickness - half):
                    self.set(x + dx, y + dy, color)

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> None:
        """Draw text with its top-left corner at (x, y)."""
        for n, char in enumerate(text):
            for row, bits in enumerate(glyph(char)):
                for col, bit in enumerate(bits):
                    if bit == "#":
                        self.rect(x + (n * (GLYPH_W + 1) + col) * scale, y + row * scale,
                                  x + (n * (GLYPH_W + 1) + col) * scale + scale - 1, y + row * scale + scale - 1,
                                  color)

    def png(self) -> bytes:
        """The image as PNG bytes (8-bit RGB, no filtering)."""
        stride = 3 * self.width
        raw = b"".join(b"\x00" + bytes(self.pixels[y * stride:(y + 1) * stride]) for y in range(self.height))
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9))
                + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def text_width(text: str, scale: int = 2) -> int:
    """Pixels a string takes at `scale`."""
    return len(text) * (GLYPH_W + 1) * scale


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        low, high = low - 0.5 if low == high else high, high + 0.5
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def tick_label(value: float) -> str:
    """A short tick label: `0.25`, `1000`, `1e-05`."""
    return f"{value:.4g}" if value != 0 else "0"


Series = tuple[str, Sequence[float], Sequence[float | None], Color]


def draw_panel(canvas: Canvas, box: tuple[int, int, int, int], title: str, series: list[Series]) -> None:
    """Axes, grid, tick labels, a legend and the lines of `series` inside `box` (x0, y0, x1, y1)."""
    left, top, right, bottom = box
    xs = [x for _, sx, _, _ in series for x in sx]
    ys = [y for _, _, sy, _ in series for y in sy if y is not None and math.isfinite(y)]
    if not xs or not ys:
        canvas.text(left, top, f"{title}: no data", AXIS)
        return
    xticks, yticks = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    x_lo, x_hi, y_lo, y_hi = xticks[0], xticks[-1], yticks[0], yticks[-1]
    x_lo = max(x_lo, min(xs)) if min(xs) >= 0 else x_lo
    px = lambda x: left + (x - x_lo) / ((x_hi - x_lo) or 1) * (right - left)  # noqa: E731
    py = lambda y: bottom - (y - y_lo) / ((y_hi - y_lo) or 1) * (bottom - top)  # noqa: E731
    for y in yticks:
        canvas.line(left, py(y), right, py(y), GRID)
        label = tick_label(y)
        canvas.text(left - 8 - text_width(label), round(py(y)) - GLYPH_H, label, AXIS)
    for x in xticks:
        if x_lo <= x <= x_hi:
            canvas.line(px(x), top, px(x), bottom, GRID)
            label = tick_label(x)
            canvas.text(round(px(x)) - text_width(label) // 2, bottom + 8, label, AXIS)
    canvas.line(left, bottom, right, bottom, AXIS)
    canvas.line(left, top, left, bottom, AXIS)
    for _, sx, sy, color in series:
        points = [(px(x), py(y)) if y is not None and math.isfinite(y) else None for x, y in zip(sx, sy)]
        for a, b in zip(points, points[1:]):
            if a and b:
                canvas.line(a[0], a[1], b[0], b[1], color, thickness=2)
        if len(points) == 1 and points[0]:
            canvas.rect(round(points[0][0]) - 2, round(points[0][1]) - 2, round(points[0][0]) + 2,
                        round(points[0][1]) + 2, color)
    canvas.text(left, top - 26, title, BLACK)
    x = right
    for name, _, _, color in reversed(series):
        x -= text_width(name) + 34
        canvas.line(x, top - 19, x + 22, top - 19, color, thickness=3)
        canvas.text(x + 28, top - 26, name, BLACK)


def panels_for(history: list[dict[str, Any]]) -> list[tuple[str, list[Series]]]:
    """One panel for the loss and one per training metric, each with its `val_` twin when present."""
    keys = [k for row in history for k in row]
    names = list(dict.fromkeys(k for k in keys if k not in ("epoch", "time") and not k.startswith("val_")))
    names.sort(key=lambda k: k != "loss")
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    panels = []
    for name in names:
        series: list[Series] = [(name, epochs, [_num(r.get(name)) for r in history], TRAIN_COLOR)]
        if any(("val_" + name) in r for r in history):
            series.append(("val_" + name, epochs, [_num(r.get("val_" + name)) for r in history], VAL_COLOR))
        panels.append((name, series))
    return panels


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def render_history(history: list[dict[str, Any]], title: str = "", width: int = 900,
                   panel_height: int = 320) -> bytes:
    """PNG bytes with the loss curve and each metric's curve (train and validation) against the epoch."""
    panels = panels_for(history) or [("loss", [])]
    header = 30 if title else 0
    canvas = Canvas(width, header + panel_height * len(panels))
    if title:
        canvas.text(16, 10, title, BLACK)
    for n, (name, series) in enumerate(panels):
        top = header + n * panel_height
        draw_panel(canvas, (100, top + 50, width - 30, top + panel_height - 50), name, series)
        if n == len(panels) - 1:
            canvas.text(width // 2 - text_width("epoch") // 2, top + panel_height - 24, "epoch", AXIS)
    return canvas.png()


def save_history_plot(history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write the history chart to `path` and return it."""
    path = Path(path)
    path.write_bytes(render_history(history, title))
    return path
