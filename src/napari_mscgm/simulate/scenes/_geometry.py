"""Random geometry shared by the scene classes: cell fields, point sets, networks, segments."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from scipy.spatial import Delaunay

from .._random import Range, uniform
from ._canvas import Canvas, Outline

__all__ = [
    "CellBody",
    "cell_bodies",
    "draw_segments",
    "hole_texture",
    "inside_own",
    "jittered_grid",
    "place_discs",
    "segment_points",
    "upsample_linear",
    "voronoi_edges",
]

Keep = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def place_discs(
    rng: np.random.Generator,
    height: float,
    width: float,
    n: int,
    radius_um: Range,
    *,
    min_distance: float = 0.8,
    tries_per_disc: int = 30,
) -> np.ndarray:
    """Up to ``n`` disc centres and radii ``(cy, cx, r)`` by rejection.

    Two discs are kept ``min_distance × (r1 + r2)`` apart (below 1 they overlap
    a little, like crowded cells). Candidates are drawn in one batch; only the
    acceptance runs per candidate.
    """
    m = tries_per_disc * n
    candidates = np.stack(
        [rng.uniform(0, height, m), rng.uniform(0, width, m), uniform(rng, radius_um, m)], axis=1
    )
    placed = np.empty((n, 3))
    k = 0
    for cy, cx, r in candidates:
        if k == n:
            break
        if k == 0 or np.all(
            np.hypot(placed[:k, 0] - cy, placed[:k, 1] - cx) > min_distance * (placed[:k, 2] + r)
        ):
            placed[k] = cy, cx, r
            k += 1
    return placed[:k]


class CellBody(NamedTuple):
    """A cell's outline and the outline of its nucleus (µm)."""

    cell: Outline
    nucleus: Outline


def cell_bodies(
    rng: np.random.Generator,
    height: float,
    width: float,
    *,
    count: float,
    radius_um: Range,
    roughness: float = 0.15,
    aspect_range: Range = (1.0, 1.0),
    nucleus_fraction: Range = (0.3, 0.45),
) -> list[CellBody]:
    """Cells (at least one) with an off-centre elliptical nucleus each.

    ``count`` is the mean number of cells; an aspect above 1 elongates a cell
    along its ``tilt``.
    """
    n = max(1, rng.poisson(count))
    bodies = []
    for cy, cx, radius in place_discs(rng, height, width, n, radius_um):
        cell = Outline.random(rng, cy, cx, radius, roughness, aspect=uniform(rng, aspect_range))
        angle, shift = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.2 * radius)
        nucleus = Outline.random(
            rng,
            cy + shift * np.sin(angle),
            cx + shift * np.cos(angle),
            radius * uniform(rng, nucleus_fraction),
            roughness=0.04,
            aspect=rng.uniform(1.0, 1.5),
        )
        bodies.append(CellBody(cell, nucleus))
    return bodies


def inside_own(
    regions: list[Outline],
    owner: np.ndarray,
    margin: float,
    *,
    holes: list[Outline] | None = None,
    hole_margin: float = 1.0,
) -> Keep:
    """``keep(y, x, rows)``: are the points of rows ``rows`` inside their owner's region?

    ``owner[row]`` indexes ``regions``; with ``holes``, points inside the
    owner's hole (e.g. its nucleus) are outside.
    """

    def keep(y: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        inside = np.zeros(y.shape, bool)
        for c, outline in enumerate(regions):
            mine = owner[rows] == c
            if mine.any():
                ym, xm = y[mine], x[mine]
                ok = outline.inside(ym, xm, margin=margin)
                if holes is not None:
                    ok &= ~holes[c].inside(ym, xm, margin=hole_margin)
                inside[mine] = ok
        return inside

    return keep


def jittered_grid(
    rng: np.random.Generator,
    height: float,
    width: float,
    spacing: float,
    *,
    jitter: float = 0.4,
    margin: float = 0.0,
) -> np.ndarray:
    """Points ``(y, x)`` on a hexagonal grid of ``spacing`` µm, each moved by up to
    ``jitter × spacing``, covering the field plus ``margin`` µm on every side.

    Their Voronoi cells are convex polygons of fairly even size (5–7 sides),
    like an epithelium or a tissue section.
    """
    row = spacing * math.sqrt(3) / 2
    ys = np.arange(-margin, height + margin + row, row)
    xs = np.arange(-margin, width + margin + spacing, spacing)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    gx = gx + (np.arange(len(ys)) % 2)[:, None] * spacing / 2
    points = np.stack([gy.ravel(), gx.ravel()], axis=1)
    # Uniform in a disc of radius jitter × spacing.
    rho = jitter * spacing * np.sqrt(rng.uniform(0, 1, len(points)))
    phi = rng.uniform(0, 2 * np.pi, len(points))
    return points + np.stack([rho * np.sin(phi), rho * np.cos(phi)], axis=1)


def voronoi_edges(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite Voronoi ridges of ``points``: starts (m, 2), ends (m, 2), vertex ids (m, 2).

    Built from the Delaunay triangulation (three times faster than qhull's
    Voronoi): the vertices are the triangles' circumcentres, and the ridges
    join neighbouring triangles. Generic Voronoi vertices join exactly three
    ridges: the network's junctions are three-way, as in epithelia and the ER.
    """
    triangulation = Delaunay(points)
    corners = triangulation.points[triangulation.simplices]  # (t, 3, 2)
    b, c = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    cross = 2 * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])
    cross = np.where(np.abs(cross) < 1e-12, 1e-12, cross)  # degenerate slivers at the hull
    b2, c2 = (b**2).sum(axis=1), (c**2).sum(axis=1)
    centres = corners[:, 0] + np.stack(
        [(c[:, 1] * b2 - b[:, 1] * c2) / cross, (b[:, 0] * c2 - c[:, 0] * b2) / cross], axis=1
    )
    own = np.repeat(np.arange(len(centres)), 3)
    other = triangulation.neighbors.ravel()
    once = other > own  # each ridge once; -1 (the hull side) drops out
    ids = np.stack([own[once], other[once]], axis=1)
    return centres[ids[:, 0]], centres[ids[:, 1]], ids


def segment_points(
    rng: np.random.Generator,
    start: np.ndarray,
    end: np.ndarray,
    *,
    step_um: float,
    waviness: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every ~``step_um`` along segments ``start → end``, gently curved.

    The curve is displaced along the segment normal by
    ``L (a₁ sin πt + a₂ sin 2πt)`` with ``a_k ~ N(0, waviness / k)``, so its
    ends stay where they are (junctions stay joined). Returns y, x of shape
    (m, steps) and the mask of points on each segment.
    """
    delta = end - start
    length = np.hypot(delta[:, 0], delta[:, 1])
    count = np.maximum(2, np.ceil(length / step_um).astype(np.intp) + 1)
    k = np.arange(count.max() if len(count) else 2)
    t = k[None, :] / (count - 1)[:, None]
    valid = k[None, :] < count[:, None]
    normal = np.stack([delta[:, 1], -delta[:, 0]], axis=1) / np.maximum(length, 1e-12)[:, None]
    a1 = rng.normal(0, waviness, len(start))[:, None]
    a2 = rng.normal(0, waviness / 2, len(start))[:, None]
    bulge = length[:, None] * (a1 * np.sin(np.pi * t) + a2 * np.sin(2 * np.pi * t))
    y = start[:, 0:1] + t * delta[:, 0:1] + bulge * normal[:, 0:1]
    x = start[:, 1:2] + t * delta[:, 1:2] + bulge * normal[:, 1:2]
    return y, x, valid


def draw_segments(
    canvas: Canvas,
    rng: np.random.Generator,
    start: np.ndarray,
    end: np.ndarray,
    *,
    density: np.ndarray | float,
    width_um: float | np.ndarray,
    waviness: float = 0.0,
    keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> None:
    """Draw segments as lines of areal ``density`` (per segment) and ``width_um``.

    ``keep(y, x)`` masks points outside the structure's region.
    """
    if len(start) == 0:
        return
    thin = np.min(width_um) < 2 * canvas.px
    step = canvas.px / 2 if thin else canvas.px  # wide lines are swept discs: a pixel suffices
    y, x, valid = segment_points(rng, start, end, step_um=step, waviness=waviness)
    if keep is not None:
        valid &= keep(y, x)
    density = np.asarray(density, float)
    density = density[:, None] if density.ndim == 1 else density
    width = np.asarray(width_um, float)
    width = width[:, None] if width.ndim == 1 else width
    canvas.path(y, x, valid, density, width)


def hole_texture(
    rng: np.random.Generator, px: float, *, hole_um: float, hole_fraction: float
) -> Callable[[tuple[int, int]], np.ndarray]:
    """Texture for ``Outline.fill``: 1 with random holes of ~``hole_um`` covering
    ``hole_fraction`` of the area (ER sheet fenestrations, perforated lamellae)."""

    def texture(shape: tuple[int, int]) -> np.ndarray:
        noise = ndimage.gaussian_filter(rng.normal(size=shape), hole_um / (2.5 * px), truncate=2.5)
        return (noise > np.quantile(noise, hole_fraction)).astype(float)

    return texture


def upsample_linear(values: np.ndarray, factor: int) -> np.ndarray:
    """Linear interpolation of a block grid to a ``factor``× finer grid, centre to centre.

    Block ``k`` of ``values`` is centred on fine pixel ``factor·k + (factor - 1)/2``;
    beyond the outer block centres the edge value is held. Separable slicing,
    several times faster than ``scipy.ndimage.zoom`` for this case.
    """
    out = values
    for axis in (0, 1):
        padded = np.concatenate(
            [out.take([0], axis), out, out.take([-1], axis)], axis=axis
        )  # edge hold
        n = out.shape[axis]
        phases = []
        for j in range(factor):
            t = (j + 0.5) / factor - 0.5  # offset from the block centre, in blocks
            lo = 0 if t < 0 else 1
            a = padded.take(np.arange(lo, lo + n), axis)
            b = padded.take(np.arange(lo + 1, lo + 1 + n), axis)
            w = t + 1 if t < 0 else t
            phases.append(a + w * (b - a))
        out = np.stack(phases, axis=axis + 1)
        shape = list(out.shape)
        shape[axis : axis + 2] = [n * factor]
        out = out.reshape(shape)
    return out
