"""Calibrated uncertainty: fitted on held-out data, then measured on other held-out data."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mscgm import load_model, restore, save_model
from napari_mscgm.config import CalibrationConfig
from napari_mscgm.core.calibration import calibrated_std
from napari_mscgm.evaluation.calibration import fit_calibration, pixel_errors, uncertainty_scores
from napari_mscgm.simulate import preset_config, simulate_pair

PRESETS = ("cells", "filaments", "nuclei")


def _errors(model, seeds, samples=4):
    out = []
    for preset in PRESETS:
        for seed in seeds:
            pair = simulate_pair(preset_config(preset), shape=96, rng=seed)
            out.append(pixel_errors(model, pair.low, pair.high, samples=samples, seed=seed))
    return out


def _raw():
    """The bundled generalist without its calibration: the raw sample spread."""
    model = load_model("fluo-sr2x", device="cpu")
    model.config = model.config.model_copy(update={"calibration": None})
    return model


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    model = _raw()
    calibration = fit_calibration(_errors(model, (11, 12, 13)), samples=4, fitted_on="test set")
    model.config = model.config.model_copy(update={"calibration": calibration})
    return model


def test_the_raw_spread_is_overconfident_and_the_calibration_is_not(calibrated):
    raw = _raw()
    held_out = (21, 22, 23)  # never seen by the fit
    before = np.mean([uncertainty_scores(e)["coverage_90"] for e in _errors(raw, held_out)])
    after = np.mean([uncertainty_scores(e)["coverage_90"] for e in _errors(calibrated, held_out)])
    assert before < 0.5  # the sample spread alone covers far too little
    assert 0.85 <= after <= 0.95
    assert calibrated.config.calibration.coverage == pytest.approx(0.9, abs=0.01)


def test_calibration_travels_in_the_weights_and_the_record(calibrated, tmp_path, rng):
    path = save_model(calibrated, tmp_path / "c.safetensors")
    loaded = load_model(path, device="cpu")
    assert loaded.config.calibration == calibrated.config.calibration
    image = rng.random((24, 24)) * 50
    (_, std), meta = restore(image, loaded, samples=3, return_metadata=True)
    assert meta["uncertainty"] == "calibrated" and np.all(std > 0)
    _, raw_meta = restore(image, _raw(), samples=3, return_metadata=True)
    assert raw_meta["uncertainty"] == "sample spread"


def test_calibrated_std_follows_its_formula():
    calibration = CalibrationConfig(coefficients=(4.0, 0.0, 0.0, 0.0, 0.01))
    mean, spread = np.zeros((8, 8)), np.full((8, 8), 0.5)
    np.testing.assert_allclose(calibrated_std(mean, spread, mean, calibration), np.sqrt(1.01))
