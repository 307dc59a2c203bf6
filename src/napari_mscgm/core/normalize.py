"""The one percentile normaliser: restoration, training data, the CARE baseline and metrics.

Each channel is mapped linearly so that its ``pmin`` / ``pmax`` percentiles become
0 / 1. Where the two percentiles coincide (a mostly flat channel, e.g. sparse beads
on a zero background) the minimum and maximum are used instead; they are equal only
for a constant channel, which maps with a span of 1 (it comes back as itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["MAX_PERCENTILE_SAMPLES", "PercentileNormalizer"]

#: Values sampled per channel at most when estimating percentiles of big stacks.
MAX_PERCENTILE_SAMPLES = 4_000_000


@dataclass(frozen=True)
class PercentileNormalizer:
    """Percentile normalisation, fitted per channel.

    Parameters
    ----------
    pmin, pmax : float
        Percentiles in [0, 100] that become 0 and 1.
    values : numpy.ndarray, optional
        ``(C, 2)`` float64 ``[low, high]`` per channel; set by :meth:`fit` or
        :meth:`fit_stack` (which return a fitted copy).

    Examples
    --------
    >>> norm = PercentileNormalizer(1.0, 99.8).fit(image)        # doctest: +SKIP
    >>> x = norm.normalize(image); back = norm.denormalize(x)    # doctest: +SKIP
    """

    pmin: float = 1.0
    pmax: float = 99.8
    values: np.ndarray | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ fitting
    def fit(self, image: Any) -> PercentileNormalizer:
        """Fit one channel on every value of ``image`` (any shape, NaN and Inf left out)."""
        values = np.asarray(image, dtype=np.float64).ravel()
        return self._fitted(np.stack([self._limits(values, 0)]))

    def fit_stack(
        self, stack: Any, *, max_samples: int = MAX_PERCENTILE_SAMPLES
    ) -> PercentileNormalizer:
        """Fit each channel of a 5D ``TCZYX`` stack (numpy or dask) over T, Z, Y and X.

        Stacks with more than ``max_samples`` values per channel are estimated from a
        regular strided subsample, so whole planes are never all loaded.
        """
        t, c, z, y, x = stack.shape
        # Stride pixels only when one plane alone exceeds the budget, then stride planes.
        stride = max(1, int(np.ceil(np.sqrt(y * x / max_samples))))
        per_plane = -(-y // stride) * -(-x // stride)
        plane_stride = max(1, int(np.ceil(t * z * per_plane / max_samples)))
        limits = []
        for ci in range(c):
            planes = stack[:, ci].reshape((t * z, y, x))
            sub = planes[::plane_stride, ::stride, ::stride]
            limits.append(self._limits(np.asarray(sub, dtype=np.float64).ravel(), ci))
        return self._fitted(np.stack(limits))

    def _limits(self, values: np.ndarray, channel: int) -> np.ndarray:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise InputError(
                f"channel {channel} has no finite pixel values (all NaN or Inf); replace them "
                "first, e.g. with numpy.nan_to_num"
            )
        limits = np.percentile(finite, [self.pmin, self.pmax])
        if limits[1] <= limits[0]:
            limits = np.array([finite.min(), finite.max()])
        return limits

    def _fitted(self, values: np.ndarray) -> PercentileNormalizer:
        return PercentileNormalizer(self.pmin, self.pmax, values.astype(np.float64))

    # ------------------------------------------------------------------ mapping
    def limits(self, channel: int = 0) -> tuple[float, float]:
        """``(low, high)`` of a channel."""
        if self.values is None:
            raise RuntimeError("the normaliser is not fitted; call fit() or fit_stack() first")
        low, high = self.values[channel]
        return float(low), float(high)

    def span(self, channel: int = 0) -> float:
        """``high - low``, or 1 for a constant channel."""
        low, high = self.limits(channel)
        return high - low if high > low else 1.0

    def is_constant(self, channel: int = 0) -> bool:
        """Whether the channel holds a single value."""
        low, high = self.limits(channel)
        return high <= low

    def normalize(self, data: Any, channel: int = 0) -> np.ndarray:
        """``(data - low) / span`` in float64."""
        low, _ = self.limits(channel)
        return (np.asarray(data, dtype=np.float64) - low) / self.span(channel)

    def denormalize(self, data: Any, channel: int = 0) -> np.ndarray:
        """Back to the input's units: ``data * span + low`` in float64."""
        low, _ = self.limits(channel)
        return np.asarray(data, dtype=np.float64) * self.span(channel) + low

    def to_list(self) -> list[list[float]]:
        """The fitted ``[low, high]`` per channel (for the run metadata)."""
        return [] if self.values is None else self.values.tolist()
