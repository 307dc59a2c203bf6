"""Endoplasmic reticulum: a polygonal network of thin tubules, fenestrated sheets, the envelope."""

from __future__ import annotations

import numpy as np

from .._random import Range, RngLike, loguniform, uniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, Canvas, Outline, extent_um
from ._geometry import (
    CellBody,
    cell_bodies,
    draw_segments,
    hole_texture,
    jittered_grid,
    voronoi_edges,
)

__all__ = ["er", "reticulum_edges"]


def reticulum_edges(
    rng: np.random.Generator,
    body: CellBody,
    *,
    polygon_um: float,
    open_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tubules of one cell's reticulum: starts (m, 2), ends (m, 2) and vertex ids (m, 2).

    The Voronoi diagram of a jittered point set (spacing ``polygon_um``) is a
    polygonal network with three-way junctions. The points are pulled towards
    the nucleus, so the network is densest around it with polygons up to ~1.4×
    larger at the periphery; tubules outside the cell or over the nucleus are
    removed, and an ``open_fraction`` of the others (more towards the cell
    edge, where the network thins out) are left out.
    """
    cell, nucleus = body.cell, body.nucleus
    reach = cell.radius * (1 + np.abs(cell.amplitudes).sum())
    points = jittered_grid(rng, 2 * reach, 2 * reach, polygon_um, jitter=0.45)
    points += [cell.cy - reach, cell.cx - reach]
    # Pull the points towards the nucleus (ρ → R (ρ/R)^1.4): a dense perinuclear
    # network and polygons up to ~1.4× larger at the periphery.
    offset = points - [nucleus.cy, nucleus.cx]
    rho = np.hypot(offset[:, 0], offset[:, 1])
    warp = (np.maximum(rho, 1e-9) / cell.radius) ** 0.4
    points = [nucleus.cy, nucleus.cx] + offset * warp[:, None]
    points = points[cell.inside(points[:, 0], points[:, 1], margin=1.1)]
    if len(points) < 4:
        empty = np.empty((0, 2))
        return empty, empty, np.empty((0, 2), np.intp)
    start, end, ids = voronoi_edges(points)
    mid_y, mid_x = (start[:, 0] + end[:, 0]) / 2, (start[:, 1] + end[:, 1]) / 2
    d, r = cell.polar(mid_y, mid_x)
    keep = cell.inside(start[:, 0], start[:, 1], 0.95) & cell.inside(end[:, 0], end[:, 1], 0.95)
    keep &= ~nucleus.inside(mid_y, mid_x, 1.05)
    keep &= rng.random(len(start)) >= open_fraction + 0.35 * (d / r) ** 2
    return start[keep], end[keep], ids[keep]


def _sheets(
    canvas: Canvas, rng: np.random.Generator, nucleus: Outline, *, level: float, count: int
) -> None:
    """Perinuclear sheets: dim flat patches (1–3 µm) perforated by fenestrations."""
    angle = rng.uniform(0, 2 * np.pi, count)
    _, r = nucleus.polar(nucleus.cy + np.sin(angle), nucleus.cx + np.cos(angle))
    radius = uniform(rng, (1.0, 3.0), count)
    distance = r + radius * uniform(rng, (0.5, 1.0), count)
    for a, dist, size in zip(angle, distance, radius, strict=True):
        sheet = Outline.random(
            rng, nucleus.cy + dist * np.sin(a), nucleus.cx + dist * np.cos(a), size, 0.25
        )
        holes = hole_texture(
            rng, canvas.px, hole_um=rng.uniform(0.1, 0.25), hole_fraction=rng.uniform(0.1, 0.3)
        )
        sheet.fill(canvas, level * rng.uniform(0.15, 0.35), texture=holes)


def _draw_cell_er(
    canvas: Canvas,
    rng: np.random.Generator,
    body: CellBody,
    *,
    polygon_um: Range,
    width_um: Range,
    open_fraction: float,
    sheet_probability: float,
) -> None:
    """One cell's reticulum, junctions, nuclear envelope and (some cells) sheets."""
    level = rng.lognormal(0, 0.3)
    start, end, ids = reticulum_edges(
        rng, body, polygon_um=loguniform(rng, polygon_um), open_fraction=open_fraction
    )
    width = uniform(rng, width_um)  # sub-pixel: the width sets the dye per length
    draw_segments(
        canvas,
        rng,
        start,
        end,
        density=level * rng.lognormal(0, 0.25, len(start)),
        width_um=width,
        waviness=0.12,
    )
    # Three-way junctions hold a little extra membrane: faint dots at the vertices.
    at = np.concatenate([ids[:, 0], ids[:, 1]])
    _, first, degree = np.unique(at, return_index=True, return_counts=True)
    corner = np.concatenate([start, end])[first]
    junction = degree >= 3
    canvas.points(corner[junction, 0], corner[junction, 1], level * width * 0.06)
    # The nuclear envelope is ER too: a continuous bright contour.
    ny, nx = body.nucleus.contour(canvas.px / 2)
    arc = np.hypot(ny - np.roll(ny, 1), nx - np.roll(nx, 1))
    canvas.points(ny, nx, 1.5 * level * width * arc)
    if rng.random() < sheet_probability:
        _sheets(canvas, rng, body.nucleus, level=level, count=int(rng.integers(2, 6)))


def er(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    radius_um: Range = (12.0, 25.0),
    cells_per_1000um2: float = 1.2,
    polygon_um: Range = (0.6, 1.6),
    tubule_width_um: Range = (0.05, 0.1),
    open_fraction: float = 0.2,
    sheet_probability: float = 0.6,
) -> np.ndarray:
    """Endoplasmic reticulum of spread cells (e.g. Sec61β or KDEL labelling).

    The peripheral ER is a polygonal network of tubules 50–100 nm wide (thin
    lines) meeting at three-way junctions, with polygons ``polygon_um``
    across: the Voronoi diagram of a jittered point set (see
    :func:`reticulum_edges`), gently curved. The network thins out towards
    the cell edge and leaves the nucleus free, whose envelope is a bright
    contour; around it, some cells have dim fenestrated sheets. Polygons
    under ~0.7 µm put parallel tubules at distances of ``pair_separation_um``
    (resolved by the target only), so the scene needs no explicit pairs.

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    radius_um : (float, float)
        Range of cell radii.
    cells_per_1000um2 : float
        Mean number of cells per 1000 µm² at ``density=1`` (at least 1).
    polygon_um : (float, float)
        Range (log-uniform, per cell) of the network's mesh size.
    tubule_width_um : (float, float)
        Range of tubule widths.
    open_fraction : float
        Fraction of the network's tubules left out (more at the cell edge).
    sheet_probability : float
        Probability that a cell has perinuclear sheets.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    count = density * cells_per_1000um2 * height * width / 1000
    for body in cell_bodies(rng, height, width, count=count, radius_um=radius_um):
        _draw_cell_er(
            canvas,
            rng,
            body,
            polygon_um=polygon_um,
            width_um=tubule_width_um,
            open_fraction=open_fraction,
            sheet_probability=sheet_probability,
        )
    return canvas.render()
