"""bioimage.io export: a package that bioimageio.core validates and runs, giving the
restoration napari-mscgm gives, with the model's physics on its axes."""

from __future__ import annotations

import sys
import zipfile

import numpy as np
import pytest
import torch

from napari_mscgm import InputError, OutputError, WeightsError, load_model, restore
from napari_mscgm.cli import main
from napari_mscgm.model_io.bioimageio import EXPORT_SEED, export_bioimageio

try:  # never skipped: the export must pass bioimageio.core's own test in the suite
    import bioimageio.core as bioimageio_core
except ImportError as exc:  # pragma: no cover - an incomplete test environment
    raise ImportError(
        "tests need bioimageio.core: run scripts/setup.sh testing (it installs it next to "
        "bioimageio.spec >= 0.5.14)"
    ) from exc


def _image(seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :48]
    clean = 30 + 300 * np.exp(-((yy - 20) ** 2 + (xx - 28) ** 2) / 20.0)
    return rng.poisson(clean).astype(np.float32)


def test_the_package_passes_bioimageio_tests_and_restores_like_napari_mscgm(tmp_path, tiny_model):
    from bioimageio.spec import load_description

    image = _image()
    path = export_bioimageio(tiny_model, tmp_path / "tiny.zip", image=image, steps=2)
    summary = bioimageio_core.test_model(path)
    assert summary.status == "passed", [d.name for d in summary.details if d.status != "passed"]

    descr = load_description(path)
    (inp,), (out,) = descr.inputs, descr.outputs
    physics = tiny_model.config.physics
    assert [a.scale for a in inp.axes[2:]] == [physics.input_pixel_size_um] * 2
    assert [a.scale for a in out.axes[2:]] == [physics.target_pixel_size_um] * 2
    with zipfile.ZipFile(path) as package:
        readme = package.read("README.md").decode()
        names = set(package.namelist())
        assert {
            "rdf.yaml",
            "weights.pt",
            "environment.yaml",
            "cover.png",
            "mscgm.safetensors",
        } <= names
    assert "MSCGM" in readme and f"{physics.target_pixel_size_um:g} µm" in readme
    assert {c.url.path for c in descr.cite} == {"/abs/2407.05259", "/abs/2205.07680"}
    # napari-mscgm opens its own packages (from the safetensors copy, with its checks)
    reloaded = load_model(path, device="cpu")
    for (name, x), y in zip(tiny_model.state_dict().items(), reloaded.state_dict().values(),
                            strict=True):  # fmt: skip
        assert torch.equal(x, y), name

    # The package's prediction is napari-mscgm's restoration (same seed, no tiles), in the
    # normalised units of the input's 1st / 99.8th percentiles.
    sample = bioimageio_core.Sample(
        members={"raw": bioimageio_core.Tensor(image[None, None], dims=("batch", "channel", "y", "x"))},
        stat={}, id="test",
    )  # fmt: skip
    predicted = bioimageio_core.predict(model=descr, inputs=sample)
    package = np.asarray(predicted.members["restored"].data)[0, 0]
    ours = restore(image, tiny_model, steps=2, seed=EXPORT_SEED, tile_size=None,
                   consistency=False)  # fmt: skip
    low, high = np.percentile(image, [1.0, 99.8])
    assert package.shape == ours.shape == (96, 96)
    np.testing.assert_allclose(package, (ours - low) / (high - low), atol=2e-3)


def test_bad_requests_are_refused_in_one_line_and_nothing_is_lost(
    tmp_path, tiny_weights, capsys, monkeypatch
):
    with pytest.raises(InputError, match=r"\.zip"):
        export_bioimageio(tiny_weights, tmp_path / "model.tar", image=_image())
    existing = tmp_path / "taken.zip"
    existing.write_bytes(b"mine")
    with pytest.raises(OutputError, match="exists"):
        export_bioimageio(tiny_weights, existing, image=_image())
    assert existing.read_bytes() == b"mine"
    with pytest.raises(InputError, match="2D plane"):
        export_bioimageio(tiny_weights, tmp_path / "a.zip", image=np.zeros((2, 32, 32)))
    assert not (tmp_path / "a.zip").exists()
    with pytest.raises(WeightsError, match="not a zip file"):
        load_model(existing)  # b"mine"

    assert main(["export-bmz", tiny_weights, "-o", str(existing)]) == 2
    err = capsys.readouterr().err.strip()
    assert "exists" in err and len(err.splitlines()) == 1
    monkeypatch.setitem(sys.modules, "bioimageio.spec.model", None)  # not installed
    assert main(["export-bmz", tiny_weights, "-o", str(tmp_path / "b.zip")]) == 2
    assert "pip install 'napari-mscgm[bioimageio]'" in capsys.readouterr().err
