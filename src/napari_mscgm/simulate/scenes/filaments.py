"""Microtubule-like filaments: persistent random walks drawn as thin lines."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .._random import Range, RngLike, uniform
from ._canvas import (
    DEFAULT_PAIR_SEPARATION_UM,
    Canvas,
    extent_um,
    persistent_walks,
    smooth_modulation,
)

__all__ = ["draw_filaments", "filaments"]


def draw_filaments(
    canvas: Canvas,
    rng: np.random.Generator,
    start_um: np.ndarray,
    angle: np.ndarray,
    *,
    length_um: np.ndarray,
    persistence_um: Range,
    width_um: float,
    density: np.ndarray,
    pair_separation_um: Range,
    bundle_fraction: float,
    keep: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
    step_um: float | None = None,
) -> None:
    """Persistent random walks drawn as thin lines; some get a parallel partner.

    ``keep(y, x, rows)`` tells which points of filaments ``rows`` lie in their
    region; a filament ends where it first leaves it. ``step_um`` is the
    sampling along the lines (default half a pixel: smooth and gap-free; a
    pixel is enough for long lines the PSF blurs anyway, at half the cost).
    """
    n = len(angle)
    if n == 0:
        return
    step = canvas.px / 2 if step_um is None else step_um  # 2 per pixel: smooth, gap-free
    n_steps = max(2, math.ceil(length_um.max() / step))
    persistence = uniform(rng, persistence_um, n)
    y, x, theta = persistent_walks(rng, start_um, angle, n_steps, step, persistence)
    valid = np.arange(n_steps) < (length_um / step)[:, None]
    if keep is not None:  # stop each filament where it first leaves its region
        valid &= np.cumprod(keep(y, x, np.arange(n)), axis=1).astype(bool)
    linear = density[:, None] * smooth_modulation(rng, y.shape, 1.0 / step, 0.25)
    canvas.path(y, x, valid, linear, width_um)
    # Bundled neighbours at a sub-input-resolution distance, over a random stretch.
    partner = rng.random(n) < bundle_fraction
    if partner.any():
        m = int(partner.sum())
        sep = uniform(rng, pair_separation_um, m)[:, None] * rng.choice([-1, 1], (m, 1))
        a = rng.uniform(0, 0.5, m)[:, None] * length_um[partner, None] / step
        b = a + rng.uniform(0.3, 1.0, m)[:, None] * length_um[partner, None] / step
        idx = np.arange(n_steps)
        stretch = valid[partner] & (idx >= a) & (idx < b)
        t = theta[partner]
        py, px = y[partner] + sep * np.cos(t), x[partner] - sep * np.sin(t)
        if keep is not None:
            stretch &= keep(py, px, np.flatnonzero(partner))
        canvas.path(py, px, stretch, linear[partner], width_um)


def filaments(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    persistence_um: Range = (5.0, 20.0),
    length_um: Range = (10.0, 60.0),
    width_um: float = 0.025,
    filaments_per_1000um2: float = 4.0,
    bundle_fraction: float = 0.3,
) -> np.ndarray:
    """Microtubule-like filaments: persistent random walks drawn as thin lines.

    Each filament has a random persistence length and brightness and a smooth
    labelling variation along it; a ``bundle_fraction`` of them get a parallel
    partner at a distance from ``pair_separation_um`` over part of their length.

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    persistence_um : (float, float)
        Range of persistence lengths.
    length_um : (float, float)
        Range of contour lengths.
    width_um : float
        Line width (~25 nm for microtubules): sub-pixel, it only sets the mass.
    filaments_per_1000um2 : float
        Mean count per 1000 µm² at ``density=1``.
    bundle_fraction : float
        Fraction of filaments with a close parallel partner.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    n = max(1, rng.poisson(density * filaments_per_1000um2 * height * width / 1000))
    # Start anywhere, run in a random direction: many cross the field edge, as in images.
    start = rng.uniform(0, 1, (n, 2)) * [height, width]
    draw_filaments(
        canvas,
        rng,
        start,
        rng.uniform(0, 2 * np.pi, n),
        length_um=uniform(rng, length_um, n),
        persistence_um=persistence_um,
        width_um=width_um,
        density=rng.lognormal(0, 0.3, n),
        pair_separation_um=pair_separation_um,
        bundle_fraction=bundle_fraction,
    )
    return canvas.render()
