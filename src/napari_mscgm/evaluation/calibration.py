"""Fitting and scoring calibrated uncertainty on pairs with ground truth.

Per pixel, in the normalised units of the model's input: the sample mean ``m`` and std
``s`` of ``samples`` restorations, and the error of ``m`` against the ground truth mapped
onto the restoration by least squares (the CARE convention, so that neither the ground
truth's units nor its offset matter). :func:`fit_calibration` fits the variance model of
:mod:`napari_mscgm.core.calibration` by maximum likelihood and scales it to cover 90 % of
the pixels it was fitted on; :func:`uncertainty_scores` measures, on other data, the
coverage of ±1.645 σ and the Spearman correlation of σ with the absolute error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from ..config import CalibrationConfig
from ..core.calibration import calibration_features
from ..core.normalize import PercentileNormalizer
from .baselines import bicubic

__all__ = [
    "PixelErrors",
    "errors_of",
    "fit_calibration",
    "pixel_errors",
    "uncertainty_scores",
]

#: The two-sided 90 % interval of a Gaussian, in standard deviations.
Z90 = 1.6448536269514722


@dataclass(frozen=True)
class PixelErrors:
    """One image's restoration, in the model's normalised units."""

    mean: np.ndarray
    spread: np.ndarray  # raw sample std
    upsampled: np.ndarray  # the input on the target grid
    std: np.ndarray  # what restore returned (calibrated when the model has a calibration)
    error: np.ndarray  # mean − the ground truth fitted onto it


def pixel_errors(
    model, low: np.ndarray, high: np.ndarray, *, samples: int, seed: int = 0
) -> PixelErrors:
    """Restore ``low`` with ``samples`` samples and compare with ``high`` (normalised units)."""
    from ..restoration import restore

    mean, std = restore(low, model, samples=samples, seed=seed, axes="YX", consistency=False)
    return errors_of(model, low, high, mean, std)


def errors_of(model, low: np.ndarray, high: np.ndarray, mean: Any, std: Any) -> PixelErrors:
    """A restoration's mean and std (input units) against the ground truth, normalised."""
    calibration = model.config.calibration
    norm = model.config.normalization
    normalizer = PercentileNormalizer(norm.pmin, norm.pmax).fit(low)
    low_value, scale = normalizer.limits()[0], normalizer.span()
    mean_n = (np.asarray(mean, np.float64) - low_value) / scale
    std_n = np.asarray(std, np.float64) / scale
    start = (bicubic(low, scale=model.scale).astype(np.float64) - low_value) / scale
    # The raw spread: the calibrated std is a known function of it (and of the mean).
    spread_n = std_n if calibration is None else _spread(mean_n, std_n, start, calibration)
    design = np.stack([np.asarray(high, np.float64).ravel(), np.ones(high.size)], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, mean_n.ravel(), rcond=None)
    truth = (design @ coefficients).reshape(mean_n.shape)
    return PixelErrors(mean_n, spread_n, start, std_n, mean_n - truth)


def _spread(
    mean: np.ndarray, std: np.ndarray, start: np.ndarray, calibration: CalibrationConfig
) -> np.ndarray:
    """Invert the calibrated std for the sample spread."""
    features = calibration_features(
        mean, np.zeros_like(mean), start, gradient_sigma=calibration.gradient_sigma
    )
    c = np.asarray(calibration.coefficients)
    rest = np.tensordot(c[1:], features[1:], axes=1)
    return np.sqrt(np.maximum(std**2 - rest, 0.0) / max(c[0], 1e-12))


def fit_calibration(
    images: Sequence[PixelErrors],
    *,
    gradient_sigma: float = 1.0,
    samples: int,
    fitted_on: str,
    pixels: int = 400_000,
    seed: int = 0,
) -> CalibrationConfig:
    """Fit ``σ² = Σ c_k f_k`` by maximum likelihood, then scale it to 90 % coverage."""
    rng = np.random.default_rng(seed)
    rows, errors = [], []
    per_image = max(1, pixels // max(1, len(images)))
    for image in images:
        features = calibration_features(
            image.mean, image.spread, image.upsampled, gradient_sigma=gradient_sigma
        )
        flat = features.reshape(features.shape[0], -1)
        pick = rng.choice(flat.shape[1], min(per_image, flat.shape[1]), replace=False)
        rows.append(flat[:, pick])
        errors.append(image.error.ravel()[pick])
    features, errors = np.concatenate(rows, axis=1), np.concatenate(errors)
    squared = errors**2

    def negative_log_likelihood(theta: np.ndarray) -> float:
        variance = np.exp(theta) @ features + 1e-12
        return float(np.mean(np.log(variance) + squared / variance))

    start = np.log(np.array([1.0, 0.1, 1e-3, 1e-2, max(float(np.median(squared)), 1e-8)]))
    theta = optimize.minimize(negative_log_likelihood, start, method="Nelder-Mead",
                              options={"maxiter": 4000, "xatol": 1e-4, "fatol": 1e-7}).x  # fmt: skip
    coefficients = np.exp(theta)
    sigma = np.sqrt(coefficients @ features)
    # Heavy tails: match the 90 % quantile of |error| / σ to the Gaussian's.
    factor = float(np.quantile(np.abs(errors) / np.maximum(sigma, 1e-12), 0.9) / Z90)
    coefficients = coefficients * factor**2
    sigma = sigma * factor
    return CalibrationConfig(
        coefficients=tuple(float(c) for c in coefficients),
        gradient_sigma=gradient_sigma,
        samples=samples,
        fitted_on=fitted_on,
        coverage=float(np.mean(np.abs(errors) <= Z90 * sigma)),
    )


def uncertainty_scores(image: PixelErrors) -> dict[str, float]:
    """Coverage of ±1.645 σ and the per-pixel Spearman correlation of σ with |error|."""
    absolute = np.abs(image.error).ravel()
    std = image.std.ravel()
    spearman = stats.spearmanr(std, absolute)[0] if np.ptp(std) > 0 else 0.0
    return {
        "coverage_90": float(np.mean(absolute <= Z90 * std)),
        "spearman": float(0.0 if not np.isfinite(spearman) else spearman),
        "error_over_std": float(np.median(absolute) / max(float(np.median(std)), 1e-12)),
    }
