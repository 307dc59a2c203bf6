"""Random draws shared by the scenes and the acquisition: ranges, uniform and log-uniform."""

from __future__ import annotations

import numpy as np

__all__ = ["Range", "RngLike", "loguniform", "uniform"]

RngLike = np.random.Generator | int | None
Range = tuple[float, float]


def uniform(rng: np.random.Generator, bounds: Range, n: int | tuple[int, ...] | None = None):
    """Uniform draws in ``[low, high)``."""
    return rng.uniform(bounds[0], bounds[1], n)


def loguniform(rng: np.random.Generator, bounds: Range, n: int | None = None):
    """Log-uniform draws in ``[low, high]`` (exactly ``low`` for a fixed range)."""
    draw = np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), n))
    return np.where(bounds[0] == bounds[1], bounds[0], draw)
