"""The documentation screenshots are taken in a real napari under Xvfb.

By default they go to a temporary folder; ``MSCGM_WRITE_DOCS_IMAGES=1`` writes
docs/images/ (with the tiny test model unless a bundled model is installed).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
from qtpy.QtGui import QImage

from napari_mscgm import list_models
from napari_mscgm._napari.settings import SETTINGS_ENV

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_screenshots(make_napari_viewer, tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))
    write_docs = os.environ.get("MSCGM_WRITE_DOCS_IMAGES") == "1"
    out = ROOT / "docs" / "images" if write_docs else tmp_path / "images"
    if write_docs and list_models():  # the real thing: a bundled model, its default steps
        argv = ["--out", str(out)]
    else:  # the untrained tiny model, 2 steps: checks the machinery, not the looks
        argv = ["--out", str(out), "--model", tiny_weights, "--steps", "2", "--tile", "0"]
    viewer = make_napari_viewer(show=True)
    written = _load("make_screenshots").main(argv, viewer=viewer)
    assert [p.name for p in written] == ["widget.png", "before_after.png", "train_widget.png"]
    widget_png, before_after, train_png = (QImage(str(p)) for p in written)
    assert widget_png.width() > 250 and widget_png.height() > 400
    assert train_png.width() > 250 and train_png.height() > 300
    assert before_after.width() > 2 * before_after.height()  # three panels side by side
    # Not blank: the panels show image content.
    pixels = np.frombuffer(
        before_after.convertToFormat(QImage.Format.Format_Grayscale8)
        .constBits()
        .asstring(before_after.width() * before_after.height()),
        dtype=np.uint8,
    )
    assert pixels.std() > 10
    assert "sample_mscgm" not in viewer.layers  # the restoration is of the degraded sample
    assert "beads (degraded)_mscgm" in viewer.layers
