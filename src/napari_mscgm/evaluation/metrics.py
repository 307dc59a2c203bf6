"""CARE-style metrics (Weigert et al., 2018), the same for every method, the raw input included.

1. normalise the ground truth by its percentiles (0.1 / 99.9) to roughly [0, 1];
2. fit each prediction to it by least squares, ``α·x + β`` (so neither the
   intensity units nor the offset of a method matter);
3. ``skimage.metrics`` PSNR and SSIM with ``data_range=1`` (the normalised range).
"""

from __future__ import annotations

import numpy as np

from ..core.normalize import PercentileNormalizer
from ..errors import InputError

__all__ = [
    "HF_BAND_SIGMAS",
    "care_metrics",
    "fit_affine",
    "hf_error_ratio",
    "is_empty_field",
    "normalize_ground_truth",
]


def is_empty_field(ground_truth: np.ndarray) -> bool:
    """A constant ground truth: no PSNR, SSIM or detail to compare with (left out of means)."""
    return float(np.ptp(ground_truth)) == 0.0


def normalize_ground_truth(gt: np.ndarray, *, pmin: float = 0.1, pmax: float = 99.9) -> np.ndarray:
    """Map the ground truth so its ``pmin`` / ``pmax`` percentiles become 0 / 1 (float64)."""
    return PercentileNormalizer(pmin, pmax).fit(gt).normalize(gt)


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


#: The difference of Gaussians (target pixels) whose band the HF-error ratio measures.
HF_BAND_SIGMAS = (0.7, 2.0)


def hf_error_ratio(
    prediction: np.ndarray, ground_truth: np.ndarray, *, pmin: float = 0.1, pmax: float = 99.9
) -> float:
    """Band-pass energy of the error over that of the ground truth (after the CARE fit).

    ``band = G(σ 0.7) − G(σ 2.0)`` in target pixels. Below 1, the fine detail that is
    wrong is less than the detail that is there; painted structure pushes it above 1.
    """
    from scipy import ndimage

    gt = normalize_ground_truth(ground_truth, pmin=pmin, pmax=pmax)
    fitted = fit_affine(prediction, gt)

    def band(image: np.ndarray) -> np.ndarray:
        low, high = HF_BAND_SIGMAS
        return ndimage.gaussian_filter(image, low) - ndimage.gaussian_filter(image, high)

    signal = float(np.sum(band(gt) ** 2))
    error = float(np.sum(band(fitted - gt) ** 2))
    return error / signal if signal > 0 else (0.0 if error == 0 else float("inf"))
