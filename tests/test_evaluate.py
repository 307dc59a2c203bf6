import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_mscgm.cli import main
from napari_mscgm.config import CAREConfig, PhysicsConfig
from napari_mscgm.core.care import CARENet
from napari_mscgm.evaluation.baselines import (
    bicubic,
    deconvolution_sigma_px,
    gaussian_kernel,
    nearest,
    richardson_lucy_baseline,
)
from napari_mscgm.evaluation.metrics import care_metrics, fit_affine, normalize_ground_truth
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
        [("a", low, high), ("b", low, high)],
        {"perfect": lambda lo: high * 2 + 1, "bicubic": lambda lo: bicubic(lo, scale=2)},
    )
    assert len(result.rows) == 4
    assert result.summary["perfect"]["psnr"] > 100 and result.summary["perfect"]["ssim"] > 0.999
    assert result.summary["bicubic"]["psnr"] < 40
    assert "perfect" in result.table()


def test_care_weights_roundtrip(tmp_path, rng):
    torch.manual_seed(0)
    net = CARENet(CAREConfig(base_channels=8, channel_mults=(1, 2)))
    path = save_model(net, tmp_path / "care.safetensors")
    loaded = load_care(path)
    image = rng.random((12, 12)).astype(np.float32) * 100
    assert np.array_equal(net.eval().predict(image), loaded.predict(image))


def test_evaluate_cli_on_tiny_data(tmp_path, tiny_weights):
    data = tmp_path / "data"
    assert (
        main(["simulate", "--preset", "beads", "--n", "2", "--shape", "32", "-o", str(data)]) == 0
    )
    care = save_model(
        CARENet(CAREConfig(base_channels=8, channel_mults=(1, 2))), tmp_path / "c.safetensors"
    )
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "--model",
            tiny_weights,
            "--data",
            str(data),
            "-o",
            str(out),
            "--care",
            str(care),
            "--steps",
            "2",
            "--steps-sweep",
            "1,2",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    assert set(summary) == {
        "input (nearest)",
        "bicubic",
        "richardson-lucy",
        "care",
        "mscgm (2 steps)",
    }
    assert all(np.isfinite(s["psnr"]) and s["n"] == 2 for s in summary.values())
    assert (out / "metrics.csv").read_text().count("\n") == 1 + 2 * 5
    assert (out / "steps.csv").read_text().splitlines()[0] == "steps,psnr,ssim,seconds_per_image"
    assert main(["evaluate", "--model", tiny_weights, "--data", str(tmp_path / "none")]) == 2
