"""Actin (phalloidin stain): stress-fibre bundles with focal adhesions and a cortical meshwork."""

from __future__ import annotations

import math

import numpy as np

from .._random import Range, RngLike, uniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, Canvas, Outline, extent_um, smooth_modulation
from ._geometry import cell_bodies, draw_segments

__all__ = ["actin"]


def _fibre_offsets(rng: np.random.Generator, half_span: float, pair_separation_um: Range):
    """Perpendicular positions of parallel fibres: 1–3 µm apart, some close pairs."""
    gaps = uniform(rng, (1.0, 3.0), math.ceil(2 * half_span / 1.0) + 1)
    close = rng.random(len(gaps)) < 0.25  # pairs only the target separates
    gaps[close] = uniform(rng, pair_separation_um, int(close.sum()))
    offsets = -half_span + rng.uniform(0, 1) + np.cumsum(gaps)
    return offsets[offsets < half_span]


def _stress_fibres(
    canvas: Canvas,
    rng: np.random.Generator,
    cell: Outline,
    *,
    level: float,
    pair_separation_um: Range,
) -> list[np.ndarray]:
    """Straight-ish parallel bundles along the cell's long axis, ending in focal adhesions.

    Returns the adhesion ends ``(y, x, angle)`` of the fibres (for the caller to draw).
    """
    px = canvas.px
    reach = 1.3 * cell.radius
    offsets = _fibre_offsets(rng, cell.radius, pair_separation_um)
    n = len(offsets)
    if n == 0:
        return [np.empty(0)] * 3
    angle = cell.tilt + rng.normal(0, 0.06, (n, 1))  # near-parallel: a few degrees
    s = np.arange(-reach, reach, px)[None, :]
    bend = rng.normal(0, 0.004, (n, 1)) * s**2  # slight curvature
    y = cell.cy + s * np.sin(angle) + (offsets[:, None] + bend) * np.cos(angle)
    x = cell.cx + s * np.cos(angle) - (offsets[:, None] + bend) * np.sin(angle)
    valid = cell.inside(y, x, margin=0.92)
    # Some fibres end inside the cell (dorsal fibres, fibres over the nucleus).
    cut = rng.random((n, 2)) < 0.3
    lo = np.where(cut[:, 0], rng.uniform(-reach, 0, n), -np.inf)[:, None]
    hi = np.where(cut[:, 1], rng.uniform(0, reach, n), np.inf)[:, None]
    valid &= (s >= lo) & (s <= hi)
    has = valid.any(axis=1)
    width = uniform(rng, (0.15, 0.3), (n, 1))  # bundles of tens of filaments
    linear = level * rng.lognormal(0, 0.35, (n, 1)) * smooth_modulation(rng, y.shape, 1 / px, 0.3)
    canvas.path(y, x, valid, linear * (width / 0.2), width)
    first = np.argmax(valid, axis=1)
    last = valid.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
    rows = np.flatnonzero(has)
    ends_y = np.concatenate([y[rows, first[rows]], y[rows, last[rows]]])
    ends_x = np.concatenate([x[rows, first[rows]], x[rows, last[rows]]])
    heading = np.concatenate([angle[rows, 0] + np.pi, angle[rows, 0]])  # pointing outwards
    return [ends_y, ends_x, heading]


def _fans(
    rng: np.random.Generator, cell: Outline, n_fans: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fibres converging on a few adhesions at the cell edge: starts, ends, and anchors."""
    theta = rng.uniform(0, 2 * np.pi, n_fans)
    _, r = cell.polar(cell.cy + np.sin(theta), cell.cx + np.cos(theta))
    ay, ax = cell.cy + 0.85 * r * np.sin(theta), cell.cx + 0.85 * r * np.cos(theta)
    per_fan = rng.integers(3, 8, n_fans)
    fan = np.repeat(np.arange(n_fans), per_fan)
    inward = theta[fan] + np.pi + rng.uniform(-0.45, 0.45, fan.size)
    length = uniform(rng, (0.35, 0.8), fan.size) * r[fan]
    start = np.stack([ay[fan], ax[fan]], axis=1)
    end = start + length[:, None] * np.stack([np.sin(inward), np.cos(inward)], axis=1)
    anchors = np.stack([ay, ax, theta], axis=1)
    return start, end, anchors


def _adhesions(
    canvas: Canvas, rng: np.random.Generator, y: np.ndarray, x: np.ndarray, heading: np.ndarray
) -> None:
    """Focal adhesions: bright elongated plaques (1–2.5 µm × 0.3–0.5 µm) at fibre ends."""
    keep = rng.random(y.size) < 0.7
    y, x, heading = y[keep], x[keep], heading[keep]
    length = uniform(rng, (1.0, 2.5), y.size)[:, None]
    direction = np.stack([np.sin(heading), np.cos(heading)], axis=1)
    start = np.stack([y, x], axis=1) - 0.7 * length * direction
    end = start + length * direction
    width = uniform(rng, (0.3, 0.5), y.size)
    draw_segments(
        canvas, rng, start, end, density=1.6 * rng.lognormal(0, 0.3, y.size), width_um=width
    )


def _fibres(
    canvas: Canvas,
    rng: np.random.Generator,
    cell: Outline,
    *,
    level: float,
    n_fans: int,
    pair_separation_um: Range,
) -> None:
    """A cell's parallel stress fibres, converging fans, and the adhesions at their ends."""
    ends = _stress_fibres(canvas, rng, cell, level=level, pair_separation_um=pair_separation_um)
    start, end, anchors = _fans(rng, cell, n_fans)
    draw_segments(
        canvas,
        rng,
        start,
        end,
        density=level * rng.lognormal(0, 0.3, len(start)),
        width_um=uniform(rng, (0.15, 0.3), len(start)),
        waviness=0.02,
        keep=lambda y, x: cell.inside(y, x, margin=0.95),
    )
    ends = [np.concatenate([e, a]) for e, a in zip(ends, anchors.T, strict=True)]
    _adhesions(canvas, rng, *ends)


def _meshwork(canvas: Canvas, rng: np.random.Generator, cell: Outline, *, level: float) -> None:
    """Cortical meshwork: dense short straight filaments (0.3–1.5 µm) crossing at random
    angles, denser in a lamellipodial band at the cell edge."""
    area = np.pi * cell.radius**2 / cell.aspect
    n_body = rng.poisson(2.0 * area)
    n_edge = rng.poisson(1.0 * area)
    y1, x1 = cell.random_inside(rng, n_body, (0.0, 0.97))
    y2, x2 = cell.random_inside(rng, n_edge, (0.85, 0.97))
    centre = np.stack([np.concatenate([y1, y2]), np.concatenate([x1, x2])], axis=1)
    angle = rng.uniform(0, np.pi, len(centre))
    half = uniform(rng, (0.15, 0.75), len(centre))[:, None]
    direction = np.stack([np.sin(angle), np.cos(angle)], axis=1)
    brightness = level * rng.lognormal(0, 0.4, len(centre))
    draw_segments(
        canvas,
        rng,
        centre - half * direction,
        centre + half * direction,
        density=brightness,
        width_um=0.03,  # a few filaments (7 nm each): sub-pixel, it sets the mass
        waviness=0.05,  # no clipping at the edge: a fuzzy rim, like filopodia
    )


def actin(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    meshwork_fraction: float | None = None,
    radius_um: Range = (12.0, 25.0),
    cells_per_1000um2: float = 1.2,
    fans_per_cell: tuple[int, int] = (1, 3),
) -> np.ndarray:
    """Actin in spread cells: stress fibres, focal adhesions and a cortical meshwork.

    Each cell is elongated (aspect 1.2–2.2) and its stress fibres run along its
    long axis: near-parallel, slightly curved bundles 0.15–0.3 µm wide,
    1–3 µm apart (a quarter of the gaps from ``pair_separation_um``), most
    ending in a focal adhesion (a bright plaque 1–2.5 × 0.3–0.5 µm) near the
    edge. A few fans of 3–7 fibres converge on one adhesion at the cell edge.
    The cortical meshwork is a dense layer of short (0.3–1.5 µm) filaments
    crossing at random angles, denser in a lamellipodial band at the edge.

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    meshwork_fraction : float or None
        Share of the dye in the meshwork, 0 (stress fibres only) to 1 (meshwork
        only); None draws it per field, uniformly in [0.15, 0.85].
    radius_um : (float, float)
        Range of cell radii (long semi-axis).
    cells_per_1000um2 : float
        Mean number of cells per 1000 µm² at ``density=1`` (at least 1).
    fans_per_cell : (int, int)
        Range (inclusive) of converging fans per cell.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    mesh = rng.uniform(0.15, 0.85) if meshwork_fraction is None else float(meshwork_fraction)
    count = density * cells_per_1000um2 * height * width / 1000
    bodies = cell_bodies(
        rng,
        height,
        width,
        count=count,
        radius_um=radius_um,
        roughness=0.22,
        aspect_range=(1.2, 2.2),
    )
    for body in bodies:
        cell = body.cell
        level = rng.lognormal(0, 0.25)
        if mesh < 1:
            _fibres(
                canvas,
                rng,
                cell,
                level=(1 - mesh) * level,
                n_fans=int(rng.integers(*fans_per_cell, endpoint=True)),
                pair_separation_um=pair_separation_um,
            )
        if mesh > 0:
            _meshwork(canvas, rng, cell, level=4 * mesh * level)
    return canvas.render()
