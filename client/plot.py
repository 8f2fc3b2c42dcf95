"""`history --plot FILE`: the loss curve and each metric's curve (training and validation) against the epoch, drawn
by matplotlib (the optional extra `trainyard[plot]`) into a PNG, or an SVG or PDF when FILE ends so."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"  # matplotlib's first two colours
FORMATS = ("png", "svg", "pdf")
INSTALL_HINT = "pip install 'trainyard[plot]'"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed (it is the optional extra `trainyard[plot]`)."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(f"--plot draws with matplotlib, which is not installed: {INSTALL_HINT}") from None
    matplotlib.use("Agg", force=True)  # files only: never a window, whatever the environment says
    from matplotlib import pyplot

    return pyplot


def panels_for(history: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """(metric, has a `val_` twin) for the loss first, then each training metric."""
    keys = [k for row in history for k in row]
    names = list(dict.fromkeys(k for k in keys if k not in ("epoch", "time") and not k.startswith("val_")))
    names.sort(key=lambda k: k != "loss")
    return [(name, any(("val_" + name) in r for r in history)) for name in names]


def _num(value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else math.nan  # a gap in the line


def render_history(history: list[dict[str, Any]], title: str = "", fmt: str = "png") -> bytes:
    """The chart as `fmt` bytes: one panel per metric, stacked, sharing the epoch axis."""
    plt = _pyplot()
    panels = panels_for(history) or [("loss", False)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), sharex=True, squeeze=False)
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    try:
        for ax, (name, has_val) in zip(axes[:, 0], panels):
            series = [(name, TRAIN_COLOR)] + ([("val_" + name, VAL_COLOR)] if has_val else [])
            for key, color in series:
                ys = [_num(r.get(key)) for r in history]
                ax.plot(epochs, ys, color=color, label=key, linewidth=1.6, marker="o" if len(epochs) == 1 else None)
            if not history:
                ax.text(0.5, 0.5, "no epochs", ha="center", va="center", transform=ax.transAxes, color="gray")
            ax.set_ylabel(name)
            ax.grid(True, color="#e1e1e1")
            if history:
                ax.legend(loc="best", frameon=False)
        axes[-1, 0].set_xlabel("epoch")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format=fmt, dpi=100)
        return out.getvalue()
    finally:
        plt.close(fig)


def save_history_plot(history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write the chart to `path` (PNG unless it ends in .svg or .pdf) and return it."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    path.write_bytes(render_history(history, title, fmt if fmt in FORMATS else "png"))
    return path
