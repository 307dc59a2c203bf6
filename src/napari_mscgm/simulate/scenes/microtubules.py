"""Microtubules (tubulin stain): asters radiating from centrosomes next to the nucleus."""

from __future__ import annotations

import numpy as np

from .._random import Range, RngLike, uniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, Canvas, Outline, extent_um
from ._geometry import CellBody, cell_bodies, inside_own
from .filaments import draw_filaments

__all__ = ["microtubules"]


def _centrosomes(rng: np.random.Generator, body: CellBody, two: bool) -> np.ndarray:
    """One or two centrosomes (y, x) just outside the nucleus."""
    nucleus = body.nucleus
    angle = rng.uniform(0, 2 * np.pi, 2 if two else 1)
    if two:  # duplicated centrosomes separate around the nucleus (G2, prophase)
        angle[1] = angle[0] + rng.uniform(0.3, 1.5) * rng.choice([-1, 1])
    _, r = nucleus.polar(nucleus.cy + np.sin(angle), nucleus.cx + np.cos(angle))
    distance = r * uniform(rng, (1.05, 1.3), len(angle))
    return np.stack(
        [nucleus.cy + distance * np.sin(angle), nucleus.cx + distance * np.cos(angle)], axis=1
    )


def _cell_tubules(
    rng: np.random.Generator,
    body: CellBody,
    centres: np.ndarray,
    *,
    count: float,
    free_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts, headings and lengths of one cell's microtubules.

    Most grow from a centrosome (minus ends within 0.3 µm of it, heading
    outwards); ``free_fraction`` start anywhere in the cytoplasm (non-centrosomal,
    e.g. Golgi-nucleated) with a random heading.
    """
    cell = body.cell
    n = max(1, rng.poisson(count))
    free = rng.random(n) < free_fraction
    heading = rng.uniform(0, 2 * np.pi, n)
    which = rng.integers(len(centres), size=n)
    start = centres[which] + 0.3 * np.sqrt(rng.uniform(0, 1, (n, 1))) * np.stack(
        [np.sin(heading), np.cos(heading)], axis=1
    )
    fy, fx = cell.random_inside(rng, int(free.sum()), (0.2, 0.9))
    start[free] = np.stack([fy, fx], axis=1)
    length = uniform(rng, (0.6, 1.4), n) * cell.radius
    length[free] = uniform(rng, (3.0, 10.0), int(free.sum()))
    return start, heading, length


def _asters(
    canvas: Canvas,
    rng: np.random.Generator,
    bodies: list[CellBody],
    *,
    tubules_per_100um2: float,
    two_centrosome_fraction: float,
    free_fraction: float,
) -> list[np.ndarray]:
    """Every cell's microtubules: starts, headings, lengths, owning cell and brightness.

    Draws the centrosomes (pericentriolar material: a small bright ball each).
    """
    parts: list[list[np.ndarray]] = [[], [], [], [], []]
    for index, body in enumerate(bodies):
        centres = _centrosomes(rng, body, bool(rng.random() < two_centrosome_fraction))
        area = np.pi * body.cell.radius**2 / body.cell.aspect
        start, heading, length = _cell_tubules(
            rng, body, centres, count=tubules_per_100um2 * area / 100, free_fraction=free_fraction
        )
        level = rng.lognormal(0, 0.25)
        canvas.blobs(centres[:, 0], centres[:, 1], 0.08 * level, 0.4, "sphere")
        brightness = level * rng.lognormal(0, 0.2, len(heading))
        for collected, part in zip(
            parts, (start, heading, length, np.full(len(heading), index), brightness), strict=True
        ):
            collected.append(part)
    return [np.concatenate(column) for column in parts]


def microtubules(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    radius_um: Range = (10.0, 22.0),
    cells_per_1000um2: float = 1.2,
    tubules_per_100um2: float = 15.0,
    two_centrosome_fraction: float = 0.25,
    free_fraction: float = 0.1,
    persistence_um: Range = (20.0, 80.0),
    bundle_fraction: float = 0.1,
) -> np.ndarray:
    """Interphase microtubule arrays: asters of long curved filaments from centrosomes.

    In each cell, microtubules (25 nm wide, drawn as thin lines) grow from one
    or two centrosomes next to the nucleus out towards the membrane, bending
    gently (persistence ``persistence_um``) and ending at random lengths or at
    the cell edge; the converging minus ends make the centrosome a bright
    spot. A few are non-centrosomal, and a ``bundle_fraction`` run alongside a
    partner at a distance from ``pair_separation_um``. Unlike
    :func:`filaments`, the arrays are radial and confined to cells.

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    radius_um : (float, float)
        Range of cell radii.
    cells_per_1000um2 : float
        Mean number of cells per 1000 µm² at ``density=1`` (at least 1).
    tubules_per_100um2 : float
        Mean number of microtubules per 100 µm² of cell (× ``density``).
    two_centrosome_fraction : float
        Fraction of cells with two asters.
    free_fraction : float
        Fraction of non-centrosomal microtubules.
    persistence_um : (float, float)
        Range of persistence lengths (bending in the crowded cytoplasm).
    bundle_fraction : float
        Fraction of microtubules with a close parallel partner.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    count = density * cells_per_1000um2 * height * width / 1000
    bodies = cell_bodies(rng, height, width, count=count, radius_um=radius_um, roughness=0.15)
    start, heading, length, owner, level = _asters(
        canvas,
        rng,
        bodies,
        tubules_per_100um2=density * tubules_per_100um2,
        two_centrosome_fraction=two_centrosome_fraction,
        free_fraction=free_fraction,
    )
    cells: list[Outline] = [body.cell for body in bodies]
    draw_filaments(
        canvas,
        rng,
        start,
        heading,
        length_um=length,
        persistence_um=persistence_um,
        width_um=0.025,
        density=level,
        pair_separation_um=pair_separation_um,
        bundle_fraction=bundle_fraction,
        keep=inside_own(cells, owner, 0.97),
        step_um=pixel_size_um,  # long lines: one sample per pixel suffices
    )
    return canvas.render()
