"""Dense tissue: crowded, overlapping nuclei and cells over a textured cytoplasm everywhere."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .._random import Range, RngLike, loguniform, uniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, Canvas, Outline, extent_um
from ._geometry import jittered_grid, upsample_linear
from .membranes import cell_borders
from .nuclei import chromatin_grain, draw_nucleus

__all__ = ["tissue"]

_BLOCK = 4  # the background is drawn on a 4× coarser grid and interpolated (it is smooth)


def _background(
    canvas: Canvas, rng: np.random.Generator, sites: np.ndarray, *, level: float
) -> None:
    """Cytoplasm (or stroma) everywhere: a mosaic of cells of different brightness
    (one per Voronoi cell of ``sites``) times a two-scale texture (~0.5 and ~3 µm)."""
    h, w = canvas.shape
    coarse = (-(-h // _BLOCK), -(-w // _BLOCK))
    step = _BLOCK * canvas.px
    centres = (np.arange(coarse[0]) + 0.5) * step, (np.arange(coarse[1]) + 0.5) * step
    gy, gx = np.meshgrid(*centres, indexing="ij")
    _, owner = cKDTree(sites).query(np.stack([gy.ravel(), gx.ravel()], axis=1))
    mosaic = rng.lognormal(0, 0.35, len(sites))[owner].reshape(coarse)
    texture = np.zeros(coarse)
    for grain_um, amount in ((0.5, 0.35), (3.0, 0.3)):
        noise = rng.standard_normal(coarse, dtype=np.float32)
        noise = ndimage.gaussian_filter(noise, grain_um / step, truncate=2.5)
        texture += amount * noise / max(float(noise.std()), 1e-3)
    values = level * mosaic * np.exp(np.clip(texture, -3, 3))  # bounded on tiny fields too
    # Linear interpolation to the fine grid, block centres to pixel centres.
    fine = upsample_linear(values.astype(np.float32), _BLOCK)[:h, :w]
    canvas.dense += fine * canvas.px**2


def _nuclei(
    canvas: Canvas,
    rng: np.random.Generator,
    sites: np.ndarray,
    *,
    diameter: float,
    extra_fraction: float,
) -> None:
    """One textured nucleus per cell, plus extra nuclei of cells above or below that overlap."""
    h, w = canvas.shape[0] * canvas.px, canvas.shape[1] * canvas.px
    inside = (sites > -diameter).all(axis=1) & (sites < [h + diameter, w + diameter]).all(axis=1)
    own = sites[inside] + rng.normal(0, 0.1 * diameter, (int(inside.sum()), 2))
    n_extra = rng.poisson(extra_fraction * len(own))
    extra = rng.uniform(0, 1, (n_extra, 2)) * [h, w]
    centres = np.concatenate([own, extra])
    radius = diameter * uniform(rng, (0.25, 0.4), len(centres))
    brightness = rng.lognormal(0, 0.3, len(centres))
    brightness[len(own) :] *= uniform(rng, (0.3, 0.7), n_extra)  # out of focus: dimmer
    grain = chromatin_grain(rng, canvas.shape, canvas.px)  # nuclei cover most of the field
    for (cy, cx), r, level in zip(centres, radius, brightness, strict=True):
        outline = Outline.random(rng, cy, cx, r, 0.06, aspect=rng.uniform(1.0, 1.8))
        draw_nucleus(canvas, rng, outline, brightness=level, textured=True, grain=grain)


def tissue(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    cell_diameter_um: Range = (6.0, 12.0),
    background_level: Range = (0.2, 0.45),
    membrane_level: Range = (0.5, 2.0),
    extra_nuclei_fraction: float = 0.3,
) -> np.ndarray:
    """Dense tissue (a section or organoid): cells and nuclei filling the whole field.

    Cells are packed polygons (Voronoi cells of a jittered hexagonal grid, one
    typical diameter per field from ``cell_diameter_um``); each has a textured
    nucleus (see :func:`~.nuclei.draw_nucleus`) and a cytoplasm of its own
    brightness with a two-scale texture, so every pixel carries dye. An
    ``extra_nuclei_fraction`` of dimmer nuclei from cells above or below
    overlap the others, and the cell borders are drawn as membranes (some
    double, a pair separation apart; see :func:`~.membranes.cell_borders`).
    ``density`` scales the number of cells (smaller cells, down to 4 µm).

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    cell_diameter_um : (float, float)
        Range (log-uniform, per field) of the cell diameter.
    background_level : (float, float)
        Range of the cytoplasm's dye per µm², relative to the nuclei (~1).
    membrane_level : (float, float)
        Range of the membranes' areal dye density (their lines are 50 nm wide).
    extra_nuclei_fraction : float
        Overlapping nuclei per cell.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    diameter = max(loguniform(rng, cell_diameter_um) / np.sqrt(density), 4.0)  # cells ≥ 4 µm
    sites = jittered_grid(rng, height, width, diameter, jitter=0.35, margin=2 * diameter)
    _background(canvas, rng, sites, level=uniform(rng, background_level))
    _nuclei(canvas, rng, sites, diameter=diameter, extra_fraction=extra_nuclei_fraction)
    cell_borders(
        canvas,
        rng,
        sites,
        level=uniform(rng, membrane_level),
        width_um=0.05,
        double_fraction=0.1,
        unlabelled_fraction=0.2,
        pair_separation_um=pair_separation_um,
    )
    return canvas.render()
