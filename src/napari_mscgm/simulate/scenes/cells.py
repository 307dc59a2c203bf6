"""Whole cells: membrane, textured nucleus, vesicles, mitochondria and microtubules."""

from __future__ import annotations

import math

import numpy as np

from .._random import Range, RngLike, uniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, Canvas, Outline, extent_um, persistent_walks
from ._geometry import inside_own
from .filaments import draw_filaments
from .nuclei import chromatin_texture

__all__ = ["cells", "chromatin_texture", "place_cells"]

Parts = tuple[np.ndarray, ...]


def place_cells(rng, height, width, n, radius_um) -> list[tuple[float, float, float]]:
    """Cell centres and radii by rejection: neighbours may touch and overlap a little."""
    placed: list[tuple[float, float, float]] = []
    for _ in range(30 * n):
        if len(placed) == n:
            break
        r = uniform(rng, radius_um)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        if all(math.hypot(cy - y, cx - x) > 0.8 * (r + q) for y, x, q in placed):
            placed.append((cy, cx, r))
    return placed


def _draw_cell_body(
    canvas: Canvas,
    rng: np.random.Generator,
    cy: float,
    cx: float,
    radius: float,
    *,
    index: int,
    density: float,
    pair_separation_um: Range,
) -> tuple[Outline, Parts, Parts, Parts, Parts]:
    """Fill one cell's cytosol and nucleus; return its outline and the parts drawn later.

    The parts (membrane, vesicles, mitochondria, microtubules) are collected
    per cell and drawn in batches across cells (Python overhead).
    """
    px = canvas.px
    cell = Outline.random(rng, cy, cx, radius, roughness=0.12)
    # Areal densities (dye per µm²) set the relative brightness of the compartments.
    cell.fill(canvas, rng.uniform(0.02, 0.05), block=4)
    my, mx = cell.contour(px / 2)
    arc = np.hypot(my - np.roll(my, 1), mx - np.roll(mx, 1))
    membrane = (my, mx, rng.uniform(1.0, 2.0) * 0.05 * arc)  # 50 nm wide

    angle = rng.uniform(0, 2 * np.pi)
    shift = rng.uniform(0, 0.2 * radius)
    nucleus = Outline.random(
        rng,
        cy + shift * np.sin(angle),
        cx + shift * np.cos(angle),
        radius * rng.uniform(0.3, 0.45),
        roughness=0.04,
        aspect=rng.uniform(1.0, 1.6),
    )
    nucleus.fill(canvas, rng.uniform(0.1, 0.25), texture=chromatin_texture(rng, px))

    n_ves = rng.poisson(density * 0.4 * radius**2)
    vy, vx = cell.random_inside(rng, n_ves)
    n_close = max(1, n_ves // 10)  # partners at a distance only the target resolves
    sep = uniform(rng, pair_separation_um, n_close)
    ang = rng.uniform(0, 2 * np.pi, n_close)
    vy = np.concatenate([vy, vy[:n_close] + sep * np.sin(ang)])
    vx = np.concatenate([vx, vx[:n_close] + sep * np.cos(ang)])

    n_mito = rng.poisson(density * 0.12 * radius**2)
    my, mx = cell.random_inside(rng, n_mito, fraction=(0.3, 0.9))
    mito = (my, mx, np.full(n_mito, index))

    n_mt = rng.poisson(density * 0.06 * radius**2)
    # Microtubules grow from the centrosome next to the nucleus out to the membrane.
    near = 1.1 * nucleus.radius * rng.uniform(0.9, 1.2)
    out = rng.uniform(0, 2 * np.pi, n_mt)
    ty = nucleus.cy + near * np.sin(angle + np.pi) + 0.5 * np.sin(out)
    tx = nucleus.cx + near * np.cos(angle + np.pi) + 0.5 * np.cos(out)
    brightness = rng.uniform(1.5, 3.0) * rng.lognormal(0, 0.2, n_mt)
    tubules = (ty, tx, out, brightness, np.full(n_mt, 3.0 * radius), np.full(n_mt, index))
    return cell, membrane, (vy, vx), mito, tubules


def _draw_cell_bodies(
    canvas: Canvas,
    rng: np.random.Generator,
    placed: list[tuple[float, float, float]],
    *,
    density: float,
    pair_separation_um: Range,
) -> tuple[list[Outline], list[list[Parts]]]:
    """:func:`_draw_cell_body` for every placed cell, in one pass; drawing the parts
    batched across cells afterwards saves Python overhead."""
    outlines: list[Outline] = []
    parts: list[list[Parts]] = [[], [], [], []]
    for index, (cy, cx, radius) in enumerate(placed):
        cell, *cell_parts = _draw_cell_body(
            canvas,
            rng,
            cy,
            cx,
            radius,
            index=index,
            density=density,
            pair_separation_um=pair_separation_um,
        )
        outlines.append(cell)
        for collected, part in zip(parts, cell_parts, strict=True):
            collected.append(part)
    return outlines, parts


def _stack(parts: list[Parts]) -> list[np.ndarray]:
    return [np.concatenate(column) for column in zip(*parts, strict=True)]


def _draw_mitochondria(
    canvas: Canvas,
    rng: np.random.Generator,
    my: np.ndarray,
    mx: np.ndarray,
    owner: np.ndarray,
    outlines: list[Outline],
) -> None:
    """Short worm-like tubes, 0.25–0.5 µm thick, 1–5 µm long, kept inside their cell."""
    if not owner.size:
        return
    step = 0.15  # µm: about the tube radius; the PSF smooths what ripple is left
    length = uniform(rng, (1.0, 5.0), owner.size)
    n_steps = math.ceil(length.max() / step)
    heading = rng.uniform(0, 2 * np.pi, owner.size)
    persistence = uniform(rng, (1.5, 5.0), owner.size)
    ty, tx, _ = persistent_walks(rng, np.stack([my, mx], 1), heading, n_steps, step, persistence)
    valid = np.arange(n_steps) < (length / step)[:, None]
    keep = inside_own(outlines, owner.astype(np.intp), 0.97)
    valid &= np.cumprod(keep(ty, tx, np.arange(owner.size)), axis=1).astype(bool)
    thickness = uniform(rng, (0.25, 0.5), (owner.size, 1))
    canvas.path(ty, tx, valid, rng.uniform(0.3, 0.6, (owner.size, 1)), thickness)


def cells(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    radius_um: Range = (7.0, 14.0),
    cells_per_1000um2: float = 2.0,
) -> np.ndarray:
    """Cell-like scenes: membranes, textured nuclei, vesicles, mitochondria, microtubules.

    Per cell: a smooth closed plasma-membrane contour over a dim cytosol, an
    elliptical nucleus with chromatin texture and darker nucleoli, vesicles
    (30–150 nm radius puncta, some in close pairs from ``pair_separation_um``),
    mitochondria (worm-like tubes 0.25–0.5 µm thick, 1–5 µm long) and
    microtubules radiating from near the nucleus to the membrane.

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    radius_um : (float, float)
        Range of mean cell radii.
    cells_per_1000um2 : float
        Mean number of cells per 1000 µm² at ``density=1`` (at least 1).

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    n_cells = max(1, rng.poisson(density * cells_per_1000um2 * height * width / 1000))
    placed = place_cells(rng, height, width, n_cells, radius_um)
    outlines, (membrane, vesicles, mito, tubules) = _draw_cell_bodies(
        canvas, rng, placed, density=density, pair_separation_um=pair_separation_um
    )
    my, mx, mass = _stack(membrane)
    canvas.points(my, mx, mass)
    vy, vx = _stack(vesicles)
    canvas.blobs(
        vy,
        vx,
        0.06 * rng.lognormal(0, 0.5, vy.size),
        uniform(rng, (0.03, 0.15), vy.size),
        "sphere",
    )
    my, mx, owner = _stack(mito)
    _draw_mitochondria(canvas, rng, my, mx, owner, outlines)

    ty, tx, out, brightness, length, owner = _stack(tubules)
    draw_filaments(
        canvas,
        rng,
        np.stack([ty, tx], 1),
        out,
        length_um=length,
        persistence_um=(5.0, 15.0),
        width_um=0.025,
        density=brightness,
        pair_separation_um=pair_separation_um,
        bundle_fraction=0.2,
        keep=inside_own(outlines, owner.astype(np.intp), 0.98),
    )
    return canvas.render()
