"""The camera's noise, estimated from an image itself: a Poisson–Gaussian model.

``variance = a · mean + b`` (Foi et al., IEEE TIP 2008): ``a`` is the gain in ADU per
detected electron (shot noise), ``b`` the read-noise variance less ``a`` times the
offset. Users rarely know their camera's gain, offset and read noise, so the
consistency check and "train for my microscope" fit both from the data.

The estimate uses the finest Haar detail: in every 2×2 block the diagonal coefficient
``(x00 − x01 − x10 + x11) / 2`` cancels any locally linear signal and has exactly the
pixel noise variance. Blocks are grouped by their mean; in each group the median of the
squared coefficients (divided by the median of χ²₁, 0.455) is a variance that edges and
texture barely raise; a weighted least-squares line through the groups gives ``a`` and
``b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PoissonGaussian", "fit_poisson_gaussian"]

#: Median of a χ² variable with one degree of freedom.
_CHI2_MEDIAN = 0.45493642311957283


@dataclass(frozen=True)
class PoissonGaussian:
    """``variance = a · mean + b``, in the image's units."""

    a: float
    b: float

    def variance(self, mean: np.ndarray) -> np.ndarray:
        """The noise variance at expected values ``mean`` (never below a small floor)."""
        floor = max(self.floor, 1e-12)
        return np.maximum(self.a * np.asarray(mean, dtype=np.float64) + self.b, floor)

    @property
    def floor(self) -> float:
        """The smallest variance the model allows: a tenth of its read-noise part, or a."""
        return max(0.1 * abs(self.b), 0.1 * self.a, 0.0)

    def to_dict(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b}


def fit_poisson_gaussian(image: np.ndarray, *, bins: int = 16) -> PoissonGaussian:
    """Fit ``variance = a · mean + b`` to the noise of a 2D image.

    Parameters
    ----------
    image : numpy.ndarray
        A 2D image in camera units (ADU or any linear scale); at least 4×4 pixels.
    bins : int
        Groups of blocks by mean intensity.

    Returns
    -------
    PoissonGaussian
        ``a >= 0``; a flat or tiny image gives ``a = 0`` and ``b`` its variance.
    """
    x = np.asarray(image, dtype=np.float64)
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    if h < 2 or w < 2:
        return PoissonGaussian(0.0, float(np.var(x)) if x.size > 1 else 0.0)
    blocks = x[:h, :w].reshape(h // 2, 2, w // 2, 2)
    diagonal = (
        blocks[:, 0, :, 0] - blocks[:, 0, :, 1] - blocks[:, 1, :, 0] + blocks[:, 1, :, 1]
    ) / 2
    means = blocks.mean(axis=(1, 3)).ravel()
    squares = (diagonal**2).ravel()
    finite = np.isfinite(means) & np.isfinite(squares)
    means, squares = means[finite], squares[finite]
    if means.size < 8:
        return PoissonGaussian(0.0, float(np.median(squares) / _CHI2_MEDIAN) if means.size else 0.0)
    edges = np.unique(np.quantile(means, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # one intensity everywhere: the variance alone
        return PoissonGaussian(0.0, float(np.median(squares) / _CHI2_MEDIAN))
    which = np.clip(np.searchsorted(edges, means, side="right") - 1, 0, len(edges) - 2)
    centres, variances, counts = [], [], []
    for k in range(len(edges) - 1):
        chosen = which == k
        n = int(chosen.sum())
        if n >= 4:
            centres.append(float(means[chosen].mean()))
            variances.append(float(np.median(squares[chosen]) / _CHI2_MEDIAN))
            counts.append(n)
    return _line_fit(np.array(centres), np.array(variances), np.array(counts, dtype=np.float64))


def _line_fit(centres: np.ndarray, variances: np.ndarray, counts: np.ndarray) -> PoissonGaussian:
    """Weighted least squares ``variance = a · mean + b`` with ``a >= 0``."""
    if len(centres) == 0:
        return PoissonGaussian(0.0, 0.0)
    if len(centres) < 2 or np.ptp(centres) <= 0:
        return PoissonGaussian(0.0, float(np.average(variances, weights=counts)))
    # Each group's variance estimate has a relative error of about sqrt(2 / n): weight by
    # n / variance², so that bright groups (large variances) do not dominate the fit.
    weights = counts / np.maximum(variances, 1e-12) ** 2
    design = np.stack([centres, np.ones_like(centres)], axis=1)
    sw = np.sqrt(weights)[:, None]
    (a, b), *_ = np.linalg.lstsq(design * sw, variances * sw[:, 0], rcond=None)
    if a < 0:  # no shot noise visible: a constant variance
        return PoissonGaussian(0.0, float(np.average(variances, weights=weights)))
    return PoissonGaussian(float(a), float(b))
