"""The two batch examples of docs/examples run on small data and agree pixel for pixel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_mscgm._napari.settings import SETTINGS_ENV
from napari_mscgm.io import read_image, read_run_metadata, write_ome_tiff

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def folder(tmp_path) -> Path:
    """Two small degraded images with their pixel size (0.65 µm), as a user would have."""
    rng = np.random.default_rng(5)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(2):
        image = rng.poisson(100 + 300 * rng.random((40, 48)) ** 8).astype(np.uint16)
        write_ome_tiff(
            inputs / f"field{i}.ome.tif", image, axes="YX", pixel_size_um=(None, 0.65, 0.65)
        )
    return inputs


def test_batch_scripts_agree(folder, tmp_path, tiny_weights, make_napari_viewer, monkeypatch):
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))
    common = ["--model", tiny_weights, "--steps", "2", "--seed", "11", "--tile", "64",
              "--overlap", "8", "--device", "cpu"]  # fmt: skip

    headless = _load("batch_headless").main([str(folder), str(tmp_path / "headless"), *common])
    assert [p.name for p in headless] == ["field0_mscgm.ome.tif", "field1_mscgm.ome.tif"]

    viewer = make_napari_viewer()
    gui = _load("batch_napari_script").main(
        [str(folder), str(tmp_path / "gui"), *common], viewer=viewer
    )
    assert [p.name for p in gui] == ["field0_mscgm.ome.tif", "field1_mscgm.ome.tif"]
    # The napari script opened both files, with their pixel size, and restored each.
    assert {layer.name for layer in viewer.layers} >= {"field0", "field1", "field0_mscgm"}
    np.testing.assert_allclose(viewer.layers["field0"].scale, (0.65, 0.65))

    for a, b in zip(headless, gui, strict=True):
        gui_pixels = tifffile.imread(b)
        assert gui_pixels.shape == (80, 96) and gui_pixels.dtype == np.float32
        np.testing.assert_allclose(np.squeeze(tifffile.imread(a)), gui_pixels, rtol=1e-5, atol=1e-3)
        for path in (a, b):
            meta = read_run_metadata(path)
            assert (meta["seed"], meta["steps"], meta["tile_size"]) == (11, 2, 64)
            assert read_image(path).pixel_size_um[1:] == pytest.approx((0.325, 0.325))
        assert read_run_metadata(b)["input_name"] == a.name.removesuffix("_mscgm.ome.tif")
