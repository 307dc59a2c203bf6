"""Baselines a user would pick instead of MSCGM.

* ``input``: the raw input, nearest-neighbour resampled onto the target grid;
* ``bicubic``: bicubic resampling (the same operator the model starts from);
* ``richardson-lucy``: bicubic, then Richardson–Lucy deconvolution (skimage)
  with the Gaussian kernel ``σ_k² = σ_in² − σ_target²`` that turns the target
  PSF into the input PSF (``σ ≈ 0.21 λ / NA``);
* ``care``: a CARE-like regression U-Net of about the size of the MSCGM
  networks, trained on the same data (``napari-mscgm train --baseline care``,
  :class:`~napari_mscgm.core.care.CARENet`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import PhysicsConfig
from ..core.normalize import PercentileNormalizer
from ..core.optics import GAUSSIAN_SIGMA_FACTOR
from ..core.resample import upsample
from ..errors import InputError

__all__ = [
    "bicubic",
    "deconvolution_sigma_px",
    "fourier_oracle",
    "gaussian_kernel",
    "nearest",
    "non_local_means",
    "richardson_lucy_baseline",
]


def nearest(image: np.ndarray, *, scale: int) -> np.ndarray:
    """Nearest-neighbour resampling onto the ``scale``-times finer grid."""
    return np.repeat(np.repeat(np.asarray(image, dtype=np.float32), scale, -2), scale, -1)


def bicubic(image: np.ndarray, *, scale: int) -> np.ndarray:
    """Bicubic resampling onto the target grid (pixel-centre aligned, as MSCGM's)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    return upsample(tensor, scale)[0, 0].numpy()


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
    sigma_in = GAUSSIAN_SIGMA_FACTOR * lam / na_in
    sigma_t = GAUSSIAN_SIGMA_FACTOR * lam / na_t
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
    positive = np.clip(PercentileNormalizer(0.1, 99.9).fit(up).normalize(up), 0, None) + 1e-3
    return richardson_lucy(positive, gaussian_kernel(sigma_px), num_iter=num_iter, clip=False)


#: NLM's filter strength in noise standard deviations, tuned on a separate simulated set
#: (12 classes × 30 and 300 photons, seed 5): 0.3 → 27.20 dB, 0.45 → 27.41, 0.6 → 27.50,
#: 0.8 → 27.29, 1.2 → 26.22 (5×5 patches; 7×7 were no better).
NLM_H = 0.6


def non_local_means(image: np.ndarray) -> np.ndarray:
    """Non-local means (skimage) after a generalised Anscombe transform of the camera noise.

    The noise model is fitted on the image itself (variance ``a · x + b``), the transform
    makes it about unit Gaussian, NLM removes it (``h =`` :data:`NLM_H` ``σ``, 5×5 patches,
    13×13 search), and the exact unbiased inverse is approximated by the algebraic one.
    """
    from skimage.restoration import denoise_nl_means

    from ..core.noise_model import fit_poisson_gaussian

    x = np.asarray(image, dtype=np.float64)
    noise = fit_poisson_gaussian(x)
    a, b = max(noise.a, 1e-12), noise.b
    if noise.a <= 0:  # Gaussian noise only: no transform needed
        sigma = np.sqrt(max(b, 1e-12))
        return denoise_nl_means(x, h=NLM_H * sigma, sigma=sigma, patch_size=5, patch_distance=6,
                                fast_mode=True).astype(np.float32)  # fmt: skip
    stabilised = (2 / a) * np.sqrt(np.maximum(a * x + b + 3 * a**2 / 8, 0))
    smooth = denoise_nl_means(stabilised, h=NLM_H, sigma=1.0, patch_size=5, patch_distance=6,
                              fast_mode=True)  # fmt: skip
    back = ((a * smooth / 2) ** 2 - b - 3 * a**2 / 8) / a
    return back.astype(np.float32)


def fourier_oracle(ground_truth: np.ndarray, *, scale: int) -> np.ndarray:
    """The ground truth without the frequencies the input cannot hold: the reference limit.

    Every frequency with ``|f_y|`` or ``|f_x|`` above the input's Nyquist frequency,
    ``1 / (2 · scale)`` cycles per target pixel, is removed (a square cut). For scale 1
    nothing is removed: a denoiser's limit is the noise-free image itself.
    """
    gt = np.asarray(ground_truth, dtype=np.float64)
    if scale == 1:
        return gt.astype(np.float32)
    fy = np.fft.fftfreq(gt.shape[0])[:, None]
    fx = np.fft.fftfreq(gt.shape[1])[None, :]
    keep = (np.abs(fy) <= 1 / (2 * scale)) & (np.abs(fx) <= 1 / (2 * scale))
    return np.fft.ifft2(np.fft.fft2(gt) * keep).real.astype(np.float32)
