import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from napari_mscgm.cli import main
from napari_mscgm.config import CAREConfig, PhysicsConfig
from napari_mscgm.core.care import CARENet
from napari_mscgm.evaluation.baselines import (
    bicubic,
    deconvolution_sigma_px,
    fourier_oracle,
    gaussian_kernel,
    nearest,
    non_local_means,
    richardson_lucy_baseline,
)
from napari_mscgm.evaluation.metrics import (
    care_metrics,
    fit_affine,
    hf_error_ratio,
    normalize_ground_truth,
)
from napari_mscgm.evaluation.run import evaluate
from napari_mscgm.model_io.weights import load_care, save_model


def test_fit_affine_recovers_a_linear_map(rng):
    target = rng.random((16, 16))
    assert np.allclose(fit_affine(3.0 * target - 7.0, target), target)


def test_metrics_ignore_units_and_offset_and_follow_the_noise(rng):
    gt = rng.random((64, 64)) * 500 + 100
    gt_norm = normalize_ground_truth(gt)
    noisy = gt_norm + rng.normal(0, 0.05, gt.shape)
    psnr, ssim = care_metrics(noisy, gt)
    assert psnr == pytest.approx(care_metrics(40 * noisy + 3, gt)[0], abs=1e-9)
    assert psnr == pytest.approx(-20 * np.log10(0.05), abs=0.5)
    assert 0 < ssim < 1
    better = care_metrics(gt_norm + rng.normal(0, 0.01, gt.shape), gt)
    assert better[0] > psnr + 10 and better[1] > ssim


def test_resampling_baselines():
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert nearest(image, scale=2).shape == (8, 8)
    expected = F.interpolate(torch.from_numpy(image)[None, None], scale_factor=2, mode="bicubic")
    assert np.allclose(bicubic(image, scale=2), expected[0, 0].numpy())


def test_richardson_lucy_uses_the_psf_difference_and_sharpens():
    physics = PhysicsConfig(
        input_na=0.4, target_na=0.75, emission_wavelength_um=0.52, target_pixel_size_um=0.325
    )
    s_in, s_t = 0.21 * 0.52 / 0.4, 0.21 * 0.52 / 0.75
    assert deconvolution_sigma_px(physics) == pytest.approx(np.sqrt(s_in**2 - s_t**2) / 0.325)
    from scipy.ndimage import convolve

    point = np.zeros((32, 32))
    point[16, 16] = 1.0
    blurred = convolve(point, gaussian_kernel(1.5))[::2, ::2]
    up = bicubic(blurred, scale=2)
    deconvolved = richardson_lucy_baseline(blurred, scale=2, sigma_px=1.2, num_iter=20)
    assert deconvolved.shape == up.shape
    # sharper: a larger share of the total intensity sits in the brightest pixels
    share = lambda x: np.sort((x - x.min()).ravel())[-4:].sum() / (x - x.min()).sum()  # noqa: E731
    assert share(deconvolved) > 1.5 * share(up)


def test_evaluate_scores_every_method(rng):
    high = rng.random((16, 16))
    low = high.reshape(8, 2, 8, 2).mean((1, 3))
    result = evaluate(
        {"set": [("a", low, high), ("b", low, high)]},
        {"perfect": lambda lo: high * 2 + 1, "bicubic": lambda lo: bicubic(lo, scale=2)},
    )
    assert len(result.rows) == 4
    summary = result.summary["set"]
    assert summary["perfect"]["psnr"] > 100 and summary["perfect"]["ssim"] > 0.999
    assert summary["perfect"]["hf_error"] < 1e-12 and summary["bicubic"]["hf_error"] > 0.01
    assert summary["bicubic"]["psnr"] < 40 and summary["bicubic"]["seconds_per_mp"] >= 0
    assert "perfect" in result.table("set")


def test_empty_fields_are_left_out_of_the_means(rng):
    high = rng.random((16, 16))
    low = high.reshape(8, 2, 8, 2).mean((1, 3))
    empty = np.zeros((16, 16))
    methods = {"bicubic": lambda lo: bicubic(lo, scale=2)}
    mixed = evaluate({"s": [("a", low, high), ("e", low[:0].sum() + empty[::2, ::2], empty)]},
                     methods)  # fmt: skip
    alone = evaluate({"s": [("a", low, high)]}, methods)
    row = next(r for r in mixed.rows if r["image"] == "e")
    assert row["psnr"] is None and row["ssim"] is None and row["hf_error"] is None
    for key in ("psnr", "ssim", "hf_error"):
        assert mixed.summary["s"]["bicubic"][key] == alone.summary["s"]["bicubic"][key]
    assert mixed.summary["s"]["bicubic"]["n"] == 2
    only_empty = evaluate({"s": [("e", empty[::2, ::2], empty)]}, methods)
    assert only_empty.summary["s"]["bicubic"]["psnr"] is None
    assert "–" in only_empty.table("s")


def test_hf_error_ratio_sees_painted_detail(rng):
    truth = ndimage.gaussian_filter(rng.random((64, 64)), 3)
    painted = truth + 0.2 * rng.random((64, 64))  # fine detail that is not there
    assert hf_error_ratio(truth, truth) < 1e-20
    assert hf_error_ratio(ndimage.gaussian_filter(truth, 2), truth) < 1
    assert hf_error_ratio(painted, truth) > 1


def test_fourier_oracle_keeps_only_what_the_input_can_hold(rng):
    truth = rng.random((32, 32))
    oracle = fourier_oracle(truth, scale=2)
    spectrum = np.abs(np.fft.fft2(oracle))
    f = np.abs(np.fft.fftfreq(32))
    cut = f > 0.25 + 1e-9  # float32 output: zero up to its rounding
    assert (
        spectrum[cut].max() < 1e-4 * spectrum.max()
        and spectrum[:, cut].max() < 1e-4 * spectrum.max()
    )
    np.testing.assert_allclose(fourier_oracle(oracle, scale=2), oracle, atol=1e-5)
    np.testing.assert_allclose(fourier_oracle(truth, scale=1), truth, atol=1e-6)


def test_non_local_means_lowers_poisson_gaussian_noise(rng):
    truth = 20 + 200 * ndimage.gaussian_filter(rng.random((96, 96)), 4) ** 2
    noisy = 2.0 * rng.poisson(truth) + 100
    denoised = non_local_means(noisy)
    assert care_metrics(denoised, truth)[0] > care_metrics(noisy, truth)[0] + 2


def test_care_weights_roundtrip(tmp_path, rng):
    torch.manual_seed(0)
    net = CARENet(CAREConfig(base_channels=8, channel_mults=(1, 2)))
    path = save_model(net, tmp_path / "care.safetensors")
    loaded = load_care(path)
    image = rng.random((12, 12)).astype(np.float32) * 100
    assert np.array_equal(net.eval().predict(image), loaded.predict(image))


def test_evaluate_cli_on_tiny_data(tmp_path, tiny_weights):
    sets = []
    for preset in ("beads", "cells"):
        sets.append(tmp_path / preset)
        args = ["simulate", "--preset", preset, "--n", "2", "--shape", "32", "-o", str(sets[-1])]
        assert main(args) == 0
    care = save_model(
        CARENet(CAREConfig(base_channels=8, channel_mults=(1, 2))), tmp_path / "c.safetensors"
    )
    out = tmp_path / "eval"
    args = ["evaluate", "--model", tiny_weights, "--data", *map(str, sets), "-o", str(out),
            "--care", str(care), "--steps", "2", "--samples", "2", "--steps-sweep", "1,2",
            "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    methods = {"input (nearest)", "bicubic", "richardson-lucy (2 it)", "care",
               "mscgm (2 steps)", "fourier oracle (reference)"}  # fmt: skip
    assert set(summary) == {"beads", "cells"}
    for per_set in summary.values():
        assert set(per_set) == methods
        assert all(np.isfinite(s["psnr"]) and np.isfinite(s["hf_error"]) for s in per_set.values())
        mscgm = per_set["mscgm (2 steps)"]
        assert 0 <= mscgm["inconsistent_rate"] <= 1 and 0 <= mscgm["coverage_90"] <= 1
        assert -1 <= mscgm["spearman"] <= 1 and mscgm["n"] == 2
    assert (out / "metrics.csv").read_text().count("\n") == 1 + 2 * 2 * len(methods)
    header = (out / "steps.csv").read_text().splitlines()[0]
    assert header == "steps,psnr,ssim,hf_error,sample_std,seconds"
    assert main(["evaluate", "--model", tiny_weights, "--data", str(tmp_path / "none")]) == 2


def test_denoising_models_meet_non_local_means(tmp_path):
    from conftest import tiny_config

    from napari_mscgm import MSCGM

    data = tmp_path / "den"
    assert main(["simulate", "--preset", "fluo-denoise", "--n", "2", "--shape", "32",
                 "-o", str(data)]) == 0  # fmt: skip
    model = save_model(MSCGM(tiny_config(scale=1)), tmp_path / "d.safetensors")
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(model), "--data", str(data), "-o", str(out), "--steps", "1"]
    assert main(args) == 0
    summary = json.loads((out / "metrics.json").read_text())["summary"]["den"]
    assert set(summary) == {"input (nearest)", "non-local means", "mscgm (1 steps)"}


def test_calibrate_cli_writes_a_calibrated_model(tmp_path, tiny_weights):
    from napari_mscgm import load_model

    data = tmp_path / "cal"
    assert (
        main(["simulate", "--preset", "cells", "--n", "2", "--shape", "32", "-o", str(data)]) == 0
    )
    out = tmp_path / "calibrated.safetensors"
    args = ["calibrate", "--model", tiny_weights, "--data", str(data), "--samples", "2",
            "-o", str(out), "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    calibration = load_model(out).config.calibration
    assert calibration.samples == 2 and calibration.coverage == pytest.approx(0.9, abs=0.05)
    assert "2 pairs" in calibration.fitted_on
    assert main([*args[:-2], "--samples", "1"]) == 2
