"""Membranes only: the outlines of touching cells in an epithelium-like sheet."""

from __future__ import annotations

import numpy as np

from .._random import Range, RngLike, loguniform, uniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, Canvas, extent_um
from ._geometry import jittered_grid, segment_points, voronoi_edges

__all__ = ["cell_borders", "membranes"]


def cell_borders(
    canvas: Canvas,
    rng: np.random.Generator,
    sites: np.ndarray,
    *,
    level: float,
    width_um: float,
    double_fraction: float,
    unlabelled_fraction: float,
    pair_separation_um: Range,
) -> None:
    """Draw the borders of the Voronoi cells of ``sites`` as thin membrane lines.

    Borders are gently wavy and vary in brightness; an ``unlabelled_fraction``
    of them are missing (weak labelling), and a ``double_fraction`` are drawn
    as the two membranes of the neighbouring cells, a distance from
    ``pair_separation_um`` apart (a gap the target resolves, the input not).
    Three-cell junctions are slightly brighter (tricellular junction proteins).
    """
    start, end, ids = voronoi_edges(sites)
    h, w = canvas.shape[0] * canvas.px, canvas.shape[1] * canvas.px
    near = (np.minimum(start, end) < [h + 5, w + 5]).all(axis=1)
    near &= (np.maximum(start, end) > -5).all(axis=1)
    labelled = near & (rng.random(len(start)) >= unlabelled_fraction)
    start, end, ids = start[labelled], end[labelled], ids[labelled]
    brightness = level * rng.lognormal(0, 0.3, len(start))
    y, x, valid = segment_points(rng, start, end, step_um=canvas.px / 2, waviness=0.04)
    # Double borders: the same curve shifted both ways along the chord's normal.
    double = np.flatnonzero(rng.random(len(start)) < double_fraction)
    delta = end[double] - start[double]
    normal = np.stack([delta[:, 1], -delta[:, 0]], axis=1)
    normal /= np.maximum(np.hypot(normal[:, 0], normal[:, 1]), 1e-12)[:, None]
    half = uniform(rng, pair_separation_um, len(double))[:, None] / 2
    shift_y, shift_x = half * normal[:, 0:1], half * normal[:, 1:2]
    y = np.concatenate([np.delete(y, double, 0), y[double] + shift_y, y[double] - shift_y])
    x = np.concatenate([np.delete(x, double, 0), x[double] + shift_x, x[double] - shift_x])
    valid = np.concatenate([np.delete(valid, double, 0), valid[double], valid[double]])
    levels = np.concatenate([np.delete(brightness, double), brightness[double], brightness[double]])
    canvas.path(y, x, valid, levels[:, None], width_um)
    at = np.concatenate([ids[:, 0], ids[:, 1]])
    _, first, degree = np.unique(at, return_index=True, return_counts=True)
    corner = np.concatenate([start, end])[first[degree >= 3]]
    # A small disc (~0.25 µm): slightly brighter than the borders once blurred.
    canvas.blobs(corner[:, 0], corner[:, 1], 0.3 * level * width_um, 0.12, "disc")


def membranes(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    cell_diameter_um: Range = (8.0, 20.0),
    jitter: Range = (0.2, 0.45),
    width_um: float = 0.05,
    double_fraction: float = 0.2,
    unlabelled_fraction: float = 0.05,
) -> np.ndarray:
    """Membranes only: thin bright contours of touching cells, with no interior.

    An epithelium-like sheet: the cells are the Voronoi cells of a jittered
    hexagonal point set (5–7-sided polygons of ``cell_diameter_um``, one size
    per field, with some spread), their borders drawn as 50 nm membranes (see
    :func:`cell_borders`). ``density`` scales the number of cells (smaller
    cells for a higher density).

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    cell_diameter_um : (float, float)
        Range (log-uniform, per field) of the typical cell diameter.
    jitter : (float, float)
        Range of the jitter of the cell centres, in cell diameters: 0 is a
        perfect honeycomb, ~0.5 a disordered sheet.
    width_um : float
        Membrane width (sub-pixel: it sets the dye per length).
    double_fraction : float
        Fraction of borders drawn as two membranes a pair separation apart.
    unlabelled_fraction : float
        Fraction of borders left out.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    diameter = loguniform(rng, cell_diameter_um) / np.sqrt(density)
    sites = jittered_grid(
        rng, height, width, diameter, jitter=uniform(rng, jitter), margin=2 * diameter
    )
    cell_borders(
        canvas,
        rng,
        sites,
        level=1.0,
        width_um=width_um,
        double_fraction=double_fraction,
        unlabelled_fraction=unlabelled_fraction,
        pair_separation_um=pair_separation_um,
    )
    return canvas.render()
