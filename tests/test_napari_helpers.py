"""The plugin's pure helpers, tested without Qt or a display."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_mscgm._napari.helpers import (
    contrast_limits,
    model_summary,
    output_geometry,
    pixel_size_warning,
    progress_status,
    visible_region,
)
from napari_mscgm.errors import InputError
from napari_mscgm.model_io.weights import read_model_config
from napari_mscgm.restoration.axes import INFERRED_AXES, layer_axes


def test_the_helpers_import_no_qt():
    code = (
        "import sys, napari_mscgm._napari.helpers, napari_mscgm._napari.writer, "
        "napari_mscgm._napari.sample_data\n"
        "bad = [m for m in ('qtpy', 'PyQt5', 'PyQt6', 'PySide6', 'magicgui', 'napari') "
        "if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_layer_axes_follow_the_one_table():
    # napari keeps channels in separate layers: below 5D a layer has no C axis, its C is T.
    assert [layer_axes(n) for n in (2, 3, 4, 5)] == ["YX", "ZYX", "TZYX", "TCZYX"]
    for ndim, axes in INFERRED_AXES.items():
        assert layer_axes(ndim).replace("T", "C") == axes or ndim == 5
    with pytest.raises(InputError, match="6 dimensions"):
        layer_axes(6)


def test_geometry_helpers():
    assert layer_axes(2) == "YX" and layer_axes(3) == "ZYX" and layer_axes(5) == "TCZYX"
    scale, translate = output_geometry((2.0, 0.5, 0.5), (10.0, 1.0, 2.0), 2)
    assert scale == (2.0, 0.25, 0.25)
    # Output pixel 0 and 1 straddle input pixel 0's centre: centres at ±scale/4.
    assert translate == (10.0, 1.0 - 0.125, 2.0 - 0.125)
    _, translate = output_geometry((1.0, 1.0), (0.0, 0.0), 4, offset_yx=(3, 5))
    assert translate == (3 - 0.375, 5 - 0.375)


def test_model_summary_is_one_line(tiny_weights):
    config = read_model_config(tiny_weights)
    described = config.model_copy(
        update={
            "description": "2x super-resolution + denoising of widefield fluorescence cells "
            "(membranes, nuclei) and filaments: 10x/0.4 NA in -> 20x/0.75 NA out.",
            "training": config.training.model_copy(update={"iterations": {"bridge": 1000}}),
        }
    )
    line = model_summary(described)
    assert line == (
        "2x super-resolution + denoising of widefield fluorescence cells and filaments; "
        "0.65 → 0.325 µm pixels, NA 0.4 → 0.75, 520 nm emission."
    )
    assert "\n" not in line
    # Without a usable description the task comes from the configuration.
    plain = described.model_copy(update={"description": "x" * 300})
    assert model_summary(plain).startswith("super-resolution ×2 of widefield fluorescence; ")


def test_pixel_size_warning(tiny_weights):
    config = read_model_config(tiny_weights)  # expects 0.65 µm
    assert pixel_size_warning("img", 0.66, config) is None  # within 10 %
    text = pixel_size_warning("img", 0.2, config)
    assert "'img' has 0.2 µm pixels" in text and "expects 0.65 µm" in text
    assert "napari's default" in pixel_size_warning("img", 1.0, config)


def test_progress_status_per_plane_and_preview():
    assert progress_status("a", 1, 3, 8, None) == "Restoring 'a': tile 3/8"
    assert progress_status("a", 2, 5, 8, None) == "Restoring 'a': plane 2/2, tile 1/4"
    assert progress_status("a", 2, 2, 0, (1, 0)) == "Previewing 'a': plane (2, 1), tile 2"


def test_visible_region_is_the_view_in_data_pixels():
    # A 1000² layer at 0.5 µm per pixel, a 200×100 canvas at zoom 2 centred on (100, 50) µm:
    # 100 × 50 µm in view, i.e. 200 × 100 pixels around pixel (200, 100).
    plane, ys, xs = visible_region(
        (3, 1000, 1000), point=(2.0, 0, 0), scale=(1.0, 0.5, 0.5), translate=(0, 0, 0),
        camera_center=(100.0, 50.0), zoom=2.0, canvas_size=(200, 100),
    )  # fmt: skip
    assert plane == (2,) and ys == (100, 301) and xs == (50, 151)
    # Larger boxes are centre-cropped; without a 2D camera the whole plane, cropped.
    _, ys, xs = visible_region((1000, 1000), point=(0, 0), scale=(1, 1), translate=(0, 0))
    assert ys == (372, 628) and xs == (372, 628)


def test_contrast_limits_never_empty():
    assert contrast_limits(np.full((4, 4), 3.0)) == (3.0, 4.0)
    assert contrast_limits(np.full((4, 4), np.nan)) == (0.0, 1.0)
    lo, hi = contrast_limits(np.arange(1000.0))
    assert 0 < lo < 20 and 980 < hi < 999
