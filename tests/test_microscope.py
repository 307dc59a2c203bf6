"""Train for my microscope: optics checked against physics, simulated pairs, a fine-tune."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mscgm import InputError, OutputError, list_models, load_model
from napari_mscgm.cli import main
from napari_mscgm.config.microscope import OBJECTIVES, FineTuneConfig, MicroscopeSpec
from napari_mscgm.config.simulation import Camera
from napari_mscgm.simulate import simulate_pairs
from napari_mscgm.training import microscope
from napari_mscgm.training.microscope import (
    camera_from_image,
    fine_tune_for_microscope,
    simulation_for,
)

TINY_TUNE = FineTuneConfig(pairs=8, shape=64, bridge_iterations=2, generator_iterations=4,
                           crop=32, validation=2)  # fmt: skip


@pytest.mark.parametrize("label", list(OBJECTIVES))
def test_common_objectives_at_their_usual_pixels_are_accepted(label):
    magnification, na, immersion = OBJECTIVES[label]
    spec = MicroscopeSpec(pixel_size_um=6.5 / magnification, na=na, immersion=immersion)
    config = simulation_for(spec)
    assert config.input.pixel_size_um == pytest.approx(6.5 / magnification)
    assert config.input.na == na and config.scale == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"na": 1.4}, "above the refractive index 1 of air"),
        ({"na": 1.4, "immersion": "water"}, "refractive index 1.333"),
        ({"pixel_size_um": 2.0, "na": 0.75}, "more than 4× the Nyquist pixel"),
        ({"task": "sr2x", "target_na": 0.3}, "must be above the input NA"),
        ({"task": "sr2x", "na": 0.9, "target_na": 1.2}, "above the refractive index 1"),
        ({"target_na": 0.9}, "denoising keeps the optics"),
    ],
)
def test_impossible_optics_are_refused_with_one_line(settings, message):
    fields = {"pixel_size_um": 0.325, "na": 0.4, **settings}
    with pytest.raises(ValueError, match=message) as info:
        MicroscopeSpec(**fields)
    assert message in str(info.value)


def test_simulated_pairs_have_the_microscopes_pixels_and_optics():
    spec = MicroscopeSpec(pixel_size_um=0.108, na=1.4, immersion="oil", task="sr2x")
    assert spec.resolved_target_na == pytest.approx(1.442)  # 0.95 × oil's index
    config = simulation_for(spec)
    assert config.input.pixel_size_um == pytest.approx(0.108)
    assert config.target.pixel_size_um == pytest.approx(0.054)
    assert config.target.na == pytest.approx(1.442) and config.scale == 2
    # the fine grid samples the highest NA drawn at Nyquist
    assert config.fine_pixel_size_um <= 0.52 / (4 * 1.4 * 1.15)
    pair = next(iter(simulate_pairs(config.model_copy(update={"acquisition": None}), n=1,
                                    shape=64, seed=0)))  # fmt: skip
    assert pair.low.shape == (32, 32) and pair.high.shape == (64, 64)
    assert pair.metadata["input_pixel_size_um"] == pytest.approx(0.108)
    # the PSF's width follows the NA: Airy FWHM 0.51 λ / NA
    assert pair.metadata["input_fwhm_um"] == pytest.approx(0.51 * 0.52 / 1.4, rel=0.1)


def test_the_camera_is_estimated_from_a_raw_image():
    camera = Camera(gain_adu_per_e=2.5, offset_adu=300.0, read_noise_e=1.8, qe=0.8)
    spec = MicroscopeSpec(pixel_size_um=0.325, na=0.75, camera=camera)
    # Smooth structure at moderate light: dense sharp structure at high photon counts
    # makes the estimate of the gain too high (documented in docs/usage.md).
    config = simulation_for(spec).model_copy(
        update={"acquisition": None, "scene": "nuclei", "input_peak_photons": (200.0, 200.0)}
    )
    pair = next(iter(simulate_pairs(config, n=1, shape=256, seed=3)))
    estimate = camera_from_image(pair.low)
    assert estimate.gain_adu_per_e == pytest.approx(2.5, rel=0.15)
    # the offset is an upper bound (background light adds to it), never far above
    assert 300 <= estimate.offset_adu <= 300 + 2.5 * 40
    with pytest.raises(InputError, match="2D plane"):
        camera_from_image(np.zeros((4, 4)))
    with pytest.raises(InputError, match="signal-dependent noise"):
        camera_from_image(np.full((64, 64), 7.0))


def test_fine_tune_writes_a_user_model_with_the_new_physics_and_a_card(
    tiny_generalists, user_models
):
    spec = MicroscopeSpec(pixel_size_um=0.108, na=1.4, immersion="oil", wavelength_um=0.6)
    result = fine_tune_for_microscope(spec, "my-scope", fine_tune=TINY_TUNE, device="cpu")
    assert result.path == user_models / "my-scope.safetensors"
    assert "my-scope" in list_models()
    model = load_model("my-scope", device="cpu")
    physics = model.config.physics
    assert physics.input_pixel_size_um == pytest.approx(0.108)
    assert physics.input_na == 1.4 and physics.emission_wavelength_um == 0.6
    assert model.config.scale == 1 and model.config.calibration is None
    assert model.config.training.iterations == {"bridge": 2, "generators": 4}
    card = result.card.read_text()
    assert "0.108 µm" in card and "oil" in card and "| mscgm" in card
    assert set(result.metrics) >= {"input (nearest)", "non-local means"}
    # the same name again is refused, and nothing is lost
    before = result.path.read_bytes()
    with pytest.raises(OutputError, match="exists"):
        fine_tune_for_microscope(spec, "my-scope", fine_tune=TINY_TUNE, device="cpu")
    assert result.path.read_bytes() == before


def test_the_cli_fine_tunes_for_super_resolution_and_refuses_bad_optics(
    tiny_generalists, user_models, capsys
):
    argv = ["train", "--for-microscope", "--pixel-size", "0.2", "--na", "0.8", "--task", "sr2x",
            "--target-na", "0.95", "--n", "8", "--bridge-iterations", "2",
            "--generator-iterations", "2", "--crop", "32", "-o", "sr-scope", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert "sr-scope" in capsys.readouterr().out
    model = load_model("sr-scope", device="cpu")
    assert model.config.physics.target_pixel_size_um == pytest.approx(0.1)
    assert model.config.physics.target_na == 0.95

    assert main([*argv[:-4], "-o", "other", "--target-na", "0.7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "must be above the input NA" in err and len(err.splitlines()) == 1
    assert main(["train", "--for-microscope", "--na", "0.8", "-o", "x"]) == 2
    assert "--pixel-size" in capsys.readouterr().err
    assert main([*argv[:-4], "-o", "sr-scope"]) == 2  # exists: not replaced without --overwrite
    assert "exists" in capsys.readouterr().err


def test_fine_tune_on_the_users_own_pairs(tiny_generalists, user_models, tmp_path):
    spec = MicroscopeSpec(pixel_size_um=0.325, na=0.75)
    config = simulation_for(spec).model_copy(update={"acquisition": None})
    pair = next(iter(simulate_pairs(config, n=1, shape=128, seed=5)))
    pairs = microscope.pairs_from_images(pair.low, pair.high, scale=1)
    assert len(pairs) == 4 and pairs[0][1].shape == (64, 64)
    result = microscope.fine_tune_on_pairs(pairs, spec, "my-pairs", fine_tune=TINY_TUNE,
                                           device="cpu")  # fmt: skip
    model = load_model("my-pairs", device="cpu")
    assert model.config.training.iterations == {"bridge": 2, "generators": 4}
    assert "image layers" in model.config.training.data
    card = result.card.read_text()
    assert "Held-out pair" in card and "tile 1-1" in card and "| mscgm" in card
    # pairs that do not register are refused before anything is trained, in one line
    with pytest.raises(InputError, match="not registered for scale 1") as info:
        microscope.pairs_from_images(pair.low, pair.high[:, :-2], scale=1)
    assert len(str(info.value).splitlines()) == 1
    # a folder of pairs, as `napari-mscgm simulate` writes it
    assert main(["simulate", "--preset", "beads", "--n", "3", "--shape", "64",
                 "--same-objective", "-o", str(tmp_path / "pairs")]) == 0  # fmt: skip
    microscope.fine_tune_on_pairs(tmp_path / "pairs", spec, "folder-pairs",
                                  fine_tune=TINY_TUNE, device="cpu")  # fmt: skip
    assert "folder" in load_model("folder-pairs", device="cpu").config.training.data
