"""`history --plot`: matplotlib's chart of each curve (the optional extra trainyard[plot]), or a clear message."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from trainyard.client.plot import TRAIN_COLOR, VAL_COLOR, PlotUnavailable, render_history, save_history_plot

pytest.importorskip("matplotlib", reason="the plot extra is not installed")
from PIL import Image  # noqa: E402  (matplotlib's own dependency)


def pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def count(rgb: np.ndarray, color: str) -> int:
    want = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb.astype(int) - want).sum(axis=2) < 30).sum())


def test_loss_and_metric_panels_with_validation_curves():
    history = [{"epoch": e, "loss": 1 / e, "accuracy": min(1.0, e / 50), "val_loss": 1.2 / e,
                "val_accuracy": None if e == 10 else e / 60, "time": e / 10} for e in range(1, 101)]
    rgb = pixels(render_history(history, title="xor j1"))
    assert rgb.shape == (640, 900, 3)  # two panels of 3.2 in at 100 dpi
    top, bottom = rgb[:320], rgb[320:]
    assert count(top, TRAIN_COLOR) > 300 and count(top, VAL_COLOR) > 300
    assert count(bottom, TRAIN_COLOR) > 300 and count(bottom, VAL_COLOR) > 300


def test_one_epoch_and_no_epochs_still_draw():
    assert count(pixels(render_history([{"epoch": 1, "loss": 0.5}])), TRAIN_COLOR) >= 20
    assert pixels(render_history([])).shape == (320, 900, 3)


def test_svg_when_the_file_says_so(tmp_path):
    path = save_history_plot([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}], tmp_path / "c.svg")
    assert path.read_text().lstrip().startswith("<?xml") and "<svg" in path.read_text()


def test_without_matplotlib_the_message_says_how_to_install_it(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    with pytest.raises(PlotUnavailable, match=r"pip install 'trainyard\[plot\]'"):
        render_history([{"epoch": 1, "loss": 0.5}])
