"""Mitochondria (matrix or outer-membrane stain): branched networks and fragments."""

from __future__ import annotations

import math

import numpy as np

from .._random import Range, RngLike, uniform
from ._canvas import (
    DEFAULT_PAIR_SEPARATION_UM,
    Canvas,
    extent_um,
    persistent_walks,
    smooth_modulation,
)
from ._geometry import CellBody, cell_bodies, inside_own

__all__ = ["mitochondria"]

_STEP_UM = 0.12  # sampling along the tubes: under their radius, so the discs merge smoothly


def _tubes(
    canvas: Canvas,
    rng: np.random.Generator,
    start: np.ndarray,
    heading: np.ndarray,
    owner: np.ndarray,
    *,
    length_um: np.ndarray,
    persistence_um: Range,
    width_um: np.ndarray,
    level: np.ndarray,
    bodies: list[CellBody],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Worm-like tubes, each ending where it first leaves its cell's cytoplasm.

    Returns the tubes' points y, x (n, steps), the valid mask and tangent angles.
    """
    if len(heading) == 0:
        empty = np.empty((0, 2))
        return empty, empty, np.empty((0, 2), bool), empty
    n_steps = max(2, math.ceil(length_um.max() / _STEP_UM))
    persistence = uniform(rng, persistence_um, len(heading))
    y, x, theta = persistent_walks(rng, start, heading, n_steps, _STEP_UM, persistence)
    valid = np.arange(n_steps) < (length_um / _STEP_UM)[:, None]
    keep = inside_own(
        [b.cell for b in bodies], owner, 0.97, holes=[b.nucleus for b in bodies], hole_margin=1.02
    )
    valid &= np.cumprod(keep(y, x, np.arange(len(owner))), axis=1).astype(bool)
    # Matrix dye varies along a tube (membrane potential, crista density).
    linear = level[:, None] * smooth_modulation(rng, y.shape, 1.0 / _STEP_UM, 0.25)
    canvas.path(y, x, valid, linear, width_um[:, None])
    return y, x, valid, theta


def _networks(
    canvas: Canvas,
    rng: np.random.Generator,
    seeds: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    width_um: Range,
    bodies: list[CellBody],
) -> None:
    """Branched networks: long tubes (3–12 µm) with two generations of side branches."""
    y0, x0, owner = seeds
    n = len(owner)
    if n == 0:
        return
    start, heading = np.stack([y0, x0], axis=1), rng.uniform(0, 2 * np.pi, n)
    length = uniform(rng, (3.0, 12.0), n)
    width = uniform(rng, (width_um[0], 0.6 * width_um[0] + 0.4 * width_um[1]), n)
    level = rng.lognormal(0, 0.3, n)
    for generation in range(3):
        y, x, valid, theta = _tubes(
            canvas,
            rng,
            start,
            heading,
            owner,
            length_um=length,
            persistence_um=(3.0, 8.0),
            width_um=width,
            level=level,
            bodies=bodies,
        )
        if generation == 2:
            break
        # Branch points: random points along each tube; side branches leave at 40–90°.
        count = valid.sum(axis=1)
        parent = np.repeat(np.arange(len(count)), rng.poisson(0.25 * count * _STEP_UM))
        parent = parent[count[parent] > 2]
        at = (rng.uniform(0.1, 0.9, len(parent)) * count[parent]).astype(np.intp)
        start = np.stack([y[parent, at], x[parent, at]], axis=1)
        side = rng.choice([-1, 1], len(parent)) * rng.uniform(0.7, 1.6, len(parent))
        heading = theta[parent, at] + side
        length = uniform(rng, (1.0, 5.0), len(parent))
        width, level, owner = width[parent], level[parent], owner[parent]
        if len(parent) == 0:
            break


def _fragments(
    canvas: Canvas,
    rng: np.random.Generator,
    seeds: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    width_um: Range,
    pair_separation_um: Range,
    bodies: list[CellBody],
) -> None:
    """Fragmented mitochondria: short rods (0.5–2.5 µm) and swollen spheroids."""
    y0, x0, owner = seeds
    n = len(owner)
    if n == 0:
        return
    spheroid = rng.random(n) < 0.35
    rods = ~spheroid
    _tubes(
        canvas,
        rng,
        np.stack([y0[rods], x0[rods]], axis=1),
        rng.uniform(0, 2 * np.pi, int(rods.sum())),
        owner[rods],
        length_um=uniform(rng, (0.5, 2.5), int(rods.sum())),
        persistence_um=(2.0, 8.0),
        width_um=uniform(rng, width_um, int(rods.sum())),
        level=rng.lognormal(0, 0.35, int(rods.sum())),
        bodies=bodies,
    )
    m = int(spheroid.sum())
    radius = uniform(rng, (0.8 * width_um[0], width_um[1] / 2 + 0.1), m)
    # Some fragments lie in close pairs (just after fission), edges a pair separation apart.
    gap = np.where(rng.random(m) < 0.3, uniform(rng, pair_separation_um, m), np.nan)
    angle = rng.uniform(0, 2 * np.pi, m)
    sy, sx = y0[spheroid], x0[spheroid]
    paired = ~np.isnan(gap)
    offset = (2 * radius + np.nan_to_num(gap))[paired]
    sy = np.concatenate([sy, sy[paired] + offset * np.sin(angle[paired])])
    sx = np.concatenate([sx, sx[paired] + offset * np.cos(angle[paired])])
    radius = np.concatenate([radius, radius[paired]])
    mass = radius**2 * np.concatenate([rng.lognormal(0, 0.35, m), np.ones(int(paired.sum()))])
    canvas.blobs(sy, sx, 4 * mass, radius, "sphere")  # ~ a tube's dye per area


def _seeds(rng: np.random.Generator, bodies: list[CellBody], counts: list[int]):
    """Start points in each cell's cytoplasm, denser around the nucleus."""
    ys, xs, owners = [], [], []
    for index, (body, count) in enumerate(zip(bodies, counts, strict=True)):
        y, x = body.cell.random_inside(rng, 3 * count, (0.0, 0.9))
        # Thin out with distance from the nucleus (perinuclear clustering).
        d = np.hypot(y - body.nucleus.cy, x - body.nucleus.cx) / body.cell.radius
        ok = (rng.random(y.size) < np.exp(-1.0 * d)) & ~body.nucleus.inside(y, x, 1.05)
        y, x = y[ok][:count], x[ok][:count]
        ys.append(y)
        xs.append(x)
        owners.append(np.full(y.size, index))
    return np.concatenate(ys), np.concatenate(xs), np.concatenate(owners)


def mitochondria(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    fragmentation: float | None = None,
    width_um: Range = (0.25, 0.7),
    radius_um: Range = (10.0, 22.0),
    cells_per_1000um2: float = 1.2,
    length_per_um2: float = 0.6,
) -> np.ndarray:
    """Mitochondria in cells: branched tubular networks and fragmented rods and spheroids.

    Networks are worm-like tubes (3–12 µm, persistence 2–6 µm) with two
    generations of side branches leaving at 40–90°; fragments are short rods
    (0.5–2.5 µm) and swollen spheroids, some in close pairs a gap from
    ``pair_separation_um`` apart. Tubes are 0.25–0.7 µm wide (networks in the
    thinner part of ``width_um``), confined to the cytoplasm, denser around the
    nucleus, with the dye varying along them.

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    fragmentation : float or None
        Share of the mitochondrial length in fragments: 0 (all networks) to 1
        (all fragments, as after fission or stress); None draws it per field,
        uniformly in [0, 1].
    width_um : (float, float)
        Range of tube widths.
    radius_um : (float, float)
        Range of cell radii.
    cells_per_1000um2 : float
        Mean number of cells per 1000 µm² at ``density=1`` (at least 1).
    length_per_um2 : float
        Mean mitochondrial length (µm) per µm² of cell at ``density=1``.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    fragmented = rng.uniform(0, 1) if fragmentation is None else float(fragmentation)
    count = density * cells_per_1000um2 * height * width / 1000
    bodies = cell_bodies(rng, height, width, count=count, radius_um=radius_um, roughness=0.15)
    length = [density * length_per_um2 * np.pi * b.cell.radius**2 / b.cell.aspect for b in bodies]
    n_networks = [rng.poisson((1 - fragmented) * total / 17.0) for total in length]
    n_fragments = [rng.poisson(fragmented * total / 1.3) for total in length]
    _networks(canvas, rng, _seeds(rng, bodies, n_networks), width_um=width_um, bodies=bodies)
    _fragments(
        canvas,
        rng,
        _seeds(rng, bodies, n_fragments),
        width_um=width_um,
        pair_separation_um=pair_separation_um,
        bodies=bodies,
    )
    return canvas.render()
