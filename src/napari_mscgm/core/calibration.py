"""Calibrated uncertainty: from the spread of samples to a std that means what it says.

The per-pixel spread of MSCGM's samples ranks the error only loosely and is several
times too small: what it cannot know (detail beyond the input's resolution, the noise it
was given) it does not vary. A model's ``calibration`` (fitted on held-out simulated data,
:mod:`napari_mscgm.evaluation.calibration`) turns it into a calibrated std, in the
normalised units of the model's input, from five per-pixel features::

    σ² = c_spread · s² + c_gradient · |∇m|² + c_intensity · |m| + c_innovation · G(m − u)² + c_floor

``s`` is the sample std, ``m`` the sample mean, ``u`` the input resampled onto the target
grid (what the model started from: ``m − u`` is what it added), ``∇`` and ``G`` Gaussian
derivative and smoothing of ``gradient_sigma`` target pixels. The coefficients are fitted by maximum likelihood and
scaled so that the ±1.645 σ interval covers 90 % of the pixels of the data fitted on.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..config.model import CalibrationConfig

__all__ = ["calibrated_std", "calibration_features"]


def calibration_features(
    mean: np.ndarray, spread: np.ndarray, upsampled: np.ndarray, *, gradient_sigma: float
) -> np.ndarray:
    """``(5, ...)`` features of one plane (normalised units): s², |∇m|², |m|, G(m − u)², 1."""
    mean = np.asarray(mean, dtype=np.float64)
    gradient = ndimage.gaussian_gradient_magnitude(mean, gradient_sigma, mode="nearest")
    added = ndimage.gaussian_filter((mean - upsampled) ** 2, gradient_sigma, mode="nearest")
    spread = np.asarray(spread, np.float64)
    return np.stack([spread**2, gradient**2, np.abs(mean), added, np.ones_like(mean)])


def calibrated_std(
    mean: np.ndarray, spread: np.ndarray, upsampled: np.ndarray, calibration: CalibrationConfig
) -> np.ndarray:
    """The calibrated std of one plane (normalised units): from its samples' mean and std,
    and the input on the target grid."""
    features = calibration_features(
        mean, spread, upsampled, gradient_sigma=calibration.gradient_sigma
    )
    coefficients = np.asarray(calibration.coefficients, dtype=np.float64)
    variance = np.tensordot(coefficients, features, axes=1)
    return np.sqrt(np.maximum(variance, 0.0))
