"""Evaluation against ground truth: CARE-style metrics, the baselines, and the comparison run.

Metrics follow the CARE convention (Weigert et al., 2018), the same for every
method, the raw input included:

1. normalise the ground truth by its percentiles (0.1 / 99.9) to roughly [0, 1];
2. fit each prediction to it by least squares, ``α·x + β`` (so neither the
   intensity units nor the offset of a method matter);
3. ``skimage.metrics`` PSNR and SSIM with ``data_range=1`` (the normalised range).

Baselines a user would pick instead of MSCGM:

* ``input``: the raw input, nearest-neighbour resampled onto the target grid;
* ``bicubic``: bicubic resampling (the same operator the model starts from);
* ``richardson-lucy``: bicubic, then Richardson–Lucy deconvolution (skimage)
  with the Gaussian kernel ``σ_k² = σ_in² − σ_target²`` that turns the target
  PSF into the input PSF (``σ ≈ 0.21 λ / NA``);
* ``care``: a CARE-like regression U-Net of about the size of the MSCGM
  networks, trained on the same data (``napari-mscgm train --baseline care``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .config import NormalizationConfig, PhysicsConfig, TrainingInfo
from .errors import InputError, WeightsError

__all__ = [
    "CARE_METADATA_KEY",
    "CAREConfig",
    "CARENet",
    "EvaluationResult",
    "bicubic",
    "care_metrics",
    "evaluate",
    "fit_affine",
    "gaussian_kernel",
    "load_care",
    "nearest",
    "normalize_ground_truth",
    "richardson_lucy_baseline",
    "save_care",
    "write_results",
]

CARE_METADATA_KEY = "mscgm_care"
#: σ of a Gaussian approximation of the widefield PSF, in units of λ / NA.
GAUSSIAN_SIGMA_PER_LAMBDA_NA = 0.21


# ---------------------------------------------------------------- metrics
def normalize_ground_truth(gt: np.ndarray, *, pmin: float = 0.1, pmax: float = 99.9) -> np.ndarray:
    """Map the ground truth so its ``pmin`` / ``pmax`` percentiles become 0 / 1 (float64)."""
    gt = np.asarray(gt, dtype=np.float64)
    low, high = np.percentile(gt, [pmin, pmax])
    return (gt - low) / max(high - low, 1e-12)


def fit_affine(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares ``α·prediction + β`` closest to ``target`` (float64)."""
    x = np.asarray(prediction, dtype=np.float64).ravel()
    y = np.asarray(target, dtype=np.float64).ravel()
    x_mean, y_mean = x.mean(), y.mean()
    var = ((x - x_mean) ** 2).sum()
    alpha = ((x - x_mean) * (y - y_mean)).sum() / var if var > 0 else 0.0
    beta = y_mean - alpha * x_mean
    return alpha * np.asarray(prediction, dtype=np.float64) + beta


def care_metrics(
    prediction: np.ndarray, ground_truth: np.ndarray, *, pmin: float = 0.1, pmax: float = 99.9
) -> tuple[float, float]:
    """CARE-style ``(PSNR, SSIM)`` of a prediction against the ground truth.

    Parameters
    ----------
    prediction : numpy.ndarray
        2D image on the ground truth's grid, in any intensity units.
    ground_truth : numpy.ndarray
        2D image of the same shape.
    pmin, pmax : float
        Percentiles that normalise the ground truth.

    Returns
    -------
    psnr : float
        In dB, ``data_range=1``.
    ssim : float
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if prediction.shape != ground_truth.shape:
        raise InputError(
            f"prediction {prediction.shape} and ground truth {ground_truth.shape} differ in shape"
        )
    gt = normalize_ground_truth(ground_truth, pmin=pmin, pmax=pmax)
    fitted = fit_affine(prediction, gt)
    psnr = peak_signal_noise_ratio(gt, fitted, data_range=1.0)
    ssim = structural_similarity(gt, fitted, data_range=1.0)
    return float(psnr), float(ssim)


# ---------------------------------------------------------------- baselines
def nearest(image: np.ndarray, *, scale: int) -> np.ndarray:
    """Nearest-neighbour resampling onto the ``scale``-times finer grid."""
    return np.repeat(np.repeat(np.asarray(image, dtype=np.float32), scale, -2), scale, -1)


def bicubic(image: np.ndarray, *, scale: int) -> np.ndarray:
    """Bicubic resampling onto the target grid (pixel-centre aligned, as ``MSCGM.upsample``)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    if scale == 1:
        return tensor[0, 0].numpy()
    out = F.interpolate(tensor, scale_factor=scale, mode="bicubic", align_corners=False)
    return out[0, 0].numpy()


def gaussian_kernel(sigma: float, *, radius: int | None = None) -> np.ndarray:
    """Normalised 2D Gaussian kernel of standard deviation ``sigma`` pixels."""
    radius = max(1, math.ceil(4 * sigma)) if radius is None else radius
    ax = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(ax**2) / (2 * sigma**2))
    kernel = np.outer(g, g)
    return kernel / kernel.sum()


def deconvolution_sigma_px(physics: PhysicsConfig) -> float:
    """Kernel σ on the target grid (pixels): ``sqrt(σ_in² − σ_target²)`` with ``σ = 0.21 λ/NA``."""
    needed = (
        physics.emission_wavelength_um,
        physics.input_na,
        physics.target_na,
        physics.target_pixel_size_um,
    )
    if any(v is None for v in needed):
        raise InputError(
            "Richardson–Lucy needs the emission wavelength, both NAs and the target pixel size"
        )
    lam, na_in, na_t, px = needed
    sigma_in = GAUSSIAN_SIGMA_PER_LAMBDA_NA * lam / na_in
    sigma_t = GAUSSIAN_SIGMA_PER_LAMBDA_NA * lam / na_t
    if sigma_in <= sigma_t:
        raise InputError("the input PSF must be wider than the target PSF for Richardson–Lucy")
    return math.sqrt(sigma_in**2 - sigma_t**2) / px


def richardson_lucy_baseline(
    image: np.ndarray, *, scale: int, sigma_px: float, num_iter: int = 20
) -> np.ndarray:
    """Bicubic resampling then Richardson–Lucy with a Gaussian kernel (skimage).

    Parameters
    ----------
    image : numpy.ndarray
        2D input in any units (it is shifted and scaled to a positive range first,
        because Richardson–Lucy assumes non-negative Poisson data).
    scale : int
        Sampling ratio of the target grid.
    sigma_px : float
        Kernel σ on the target grid (see :func:`deconvolution_sigma_px`).
    num_iter : int
        Richardson–Lucy iterations.
    """
    from skimage.restoration import richardson_lucy

    up = bicubic(image, scale=scale).astype(np.float64)
    low, high = np.percentile(up, [0.1, 99.9])
    positive = np.clip((up - low) / max(high - low, 1e-12), 0, None) + 1e-3
    return richardson_lucy(positive, gaussian_kernel(sigma_px), num_iter=num_iter, clip=False)


# ---------------------------------------------------------------- CARE baseline
class CAREConfig(BaseModel):
    """Architecture and provenance of a CARE-like baseline (stored under ``mscgm_care``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "care"
    scale: int = Field(2, ge=1)
    base_channels: int = Field(48, ge=4)
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = Field(1, ge=1)
    norm: str = "pixel"
    normalization: NormalizationConfig = NormalizationConfig()
    physics: PhysicsConfig = PhysicsConfig()
    training: TrainingInfo = TrainingInfo()


class CARENet(nn.Module):
    """CARE-like regression U-Net on the bicubic-resampled input, predicting a residual.

    The same building blocks as the MSCGM networks (residual blocks, per-pixel
    norm), one deterministic output, trained with an L1 loss.
    """

    def __init__(self, config: CAREConfig) -> None:
        super().__init__()
        from .networks import _UNetCore

        self.config = config
        self.core = _UNetCore(
            1,
            1,
            base_channels=config.base_channels,
            channel_mults=tuple(config.channel_mults),
            num_res_blocks=config.num_res_blocks,
            attention=False,
            time_dim=None,
            norm=config.norm,
        )
        self.size_multiple = 2 ** (len(config.channel_mults) - 1)

    def upsample(self, image: torch.Tensor) -> torch.Tensor:
        if self.config.scale == 1:
            return image
        return F.interpolate(
            image, scale_factor=self.config.scale, mode="bicubic", align_corners=False
        )

    def forward(self, upsampled: torch.Tensor) -> torch.Tensor:
        return upsampled + self.core(upsampled)

    @torch.no_grad()
    def predict(self, image: np.ndarray) -> np.ndarray:
        """Restore a 2D image in any units (percentile-normalised as in training)."""
        from .wavelets import pad_to_multiple

        norm = self.config.normalization
        low, high = np.percentile(image, [norm.pmin, norm.pmax])
        span = high - low if high > low else 1.0
        x = torch.from_numpy(((np.asarray(image, np.float64) - low) / span).astype(np.float32))
        device = next(self.parameters()).device
        up = self.upsample(x[None, None].to(device))
        padded, (h, w) = pad_to_multiple(up, self.size_multiple)
        out = self(padded)[..., :h, :w]
        return (out[0, 0].cpu().numpy().astype(np.float64) * span + low).astype(np.float32)


def save_care(net: CARENet, path: str | os.PathLike) -> Path:
    """Write a CARE baseline as safetensors with its config under ``mscgm_care``."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tmp = path.with_name(path.name + ".part")
    save_file(tensors, str(tmp), metadata={CARE_METADATA_KEY: net.config.model_dump_json()})
    tmp.replace(path)
    return path


def load_care(path: str | os.PathLike, *, device: str = "cpu") -> CARENet:
    """Load a CARE baseline written by :func:`save_care` (safetensors only)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such CARE weights file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if CARE_METADATA_KEY not in header:
        raise WeightsError(f"{path}: not a CARE baseline (no '{CARE_METADATA_KEY}' metadata)")
    net = CARENet(CAREConfig.model_validate_json(header[CARE_METADATA_KEY]))
    net.load_state_dict(load_file(str(path)))
    return net.eval().to(device)


# ---------------------------------------------------------------- the comparison
@dataclass
class EvaluationResult:
    """Per-image and mean metrics of every method.

    Attributes
    ----------
    rows : list of dict
        One row per (image, method): ``image``, ``method``, ``psnr``, ``ssim``, ``seconds``.
    summary : dict
        ``{method: {"psnr": mean, "ssim": mean, "seconds": mean per image, "n": count}}``.
    """

    rows: list[dict]
    summary: dict[str, dict[str, float]]

    def table(self) -> str:
        """The summary as a plain-text table."""
        lines = [f"{'method':<18} {'PSNR (dB)':>10} {'SSIM':>7} {'s/image':>8}"]
        for method, s in self.summary.items():
            lines.append(f"{method:<18} {s['psnr']:>10.2f} {s['ssim']:>7.3f} {s['seconds']:>8.3f}")
        return "\n".join(lines)


Method = Callable[[np.ndarray], np.ndarray]


def evaluate(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    methods: dict[str, Method],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Run every method on every ``(name, low, high)`` pair and score it (CARE metrics).

    Parameters
    ----------
    pairs : sequence of (str, numpy.ndarray, numpy.ndarray)
        Image name, 2D input and 2D ground truth on the target grid.
    methods : dict
        ``{name: function(low) -> prediction on the target grid}``.
    progress : callable, optional
        ``progress(done, total)`` after each image.
    """
    rows = []
    for i, (name, low, high) in enumerate(pairs):
        for method, fn in methods.items():
            start = time.perf_counter()
            prediction = np.asarray(fn(low))
            seconds = time.perf_counter() - start
            psnr, ssim = care_metrics(prediction, high)
            rows.append(
                {"image": name, "method": method, "psnr": psnr, "ssim": ssim, "seconds": seconds}
            )
        if progress is not None:
            progress(i + 1, len(pairs))
    summary = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        summary[method] = {
            "psnr": float(np.mean([r["psnr"] for r in mine])),
            "ssim": float(np.mean([r["ssim"] for r in mine])),
            "seconds": float(np.mean([r["seconds"] for r in mine])),
            "n": len(mine),
        }
    return EvaluationResult(rows, summary)


def write_results(
    result: EvaluationResult, directory: str | os.PathLike, *, info: dict | None = None
) -> tuple[Path, Path]:
    """Write ``metrics.csv`` (per image) and ``metrics.json`` (summary, rows, ``info``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / "metrics.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "method", "psnr", "ssim", "seconds"])
        writer.writeheader()
        writer.writerows(result.rows)
    json_path = directory / "metrics.json"
    json_path.write_text(
        json.dumps({"summary": result.summary, "rows": result.rows, "info": info or {}}, indent=2)
    )
    return csv_path, json_path
