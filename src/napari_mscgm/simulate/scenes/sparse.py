"""Sparse fields: a few isolated small objects on empty background, or nothing at all."""

from __future__ import annotations

import numpy as np

from .._random import Range, RngLike, uniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, Canvas, extent_um, persistent_walks

__all__ = ["SPARSE_KINDS", "sparse"]

#: Object kinds of a sparse field, drawn with equal odds.
SPARSE_KINDS: tuple[str, ...] = ("bead", "pair", "cluster", "ring", "rod", "fragment")


def _beads(canvas, rng, centre, *, pair_separation_um: Range, pairs: bool) -> None:
    """Sub-diffraction beads (100–200 nm); ``pairs`` adds a partner a pair separation away."""
    n = len(centre)
    diameter = uniform(rng, (0.1, 0.2), n)
    if pairs:
        angle = rng.uniform(0, np.pi, n)
        half = uniform(rng, pair_separation_um, n)[:, None] / 2
        offset = half * np.stack([np.sin(angle), np.cos(angle)], axis=1)
        centre = np.concatenate([centre - offset, centre + offset])
        diameter = np.concatenate([diameter, diameter * rng.uniform(0.8, 1.25, n)])
    mass = 3 * (diameter / 0.15) ** 3 * rng.lognormal(0, 0.2, len(diameter))
    canvas.blobs(centre[:, 0], centre[:, 1], mass, diameter / 2, "sphere")


def _clusters(canvas, rng, centre) -> None:
    """Tight groups of 3–8 vesicles within ~0.5 µm."""
    members = rng.integers(3, 9, len(centre))
    owner = np.repeat(np.arange(len(centre)), members)
    points = centre[owner] + rng.normal(0, 0.25, (owner.size, 2))
    diameter = uniform(rng, (0.05, 0.2), owner.size)
    canvas.blobs(
        points[:, 0], points[:, 1], rng.lognormal(0, 0.4, owner.size), diameter / 2, "sphere"
    )


def _rings(canvas, rng, centre) -> None:
    """Hollow spheres 0.5–1.5 µm across (large vesicles, vacuoles): a membrane ring."""
    radius = uniform(rng, (0.25, 0.75), len(centre))
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)[None, :]
    y = centre[:, 0:1] + radius[:, None] * np.sin(theta)
    x = centre[:, 1:2] + radius[:, None] * np.cos(theta)
    arc = 2 * np.pi * radius[:, None] / theta.shape[1]
    mass = 1.2 * arc * rng.lognormal(0, 0.3, (len(centre), 1))
    canvas.points(y, x, np.broadcast_to(mass, y.shape).ravel())


def _rods(canvas, rng, centre, *, fragment: bool) -> None:
    """Short rods: bacteria-like (1–3 × 0.4–0.8 µm), or thin filament fragments (2–6 µm)."""
    n = len(centre)
    if n == 0:
        return
    step = 0.05
    length = uniform(rng, (2.0, 6.0) if fragment else (1.0, 3.0), n)
    n_steps = int(np.ceil(length.max() / step))
    heading = rng.uniform(0, 2 * np.pi, n)
    back = 0.5 * length[:, None] * np.stack([np.sin(heading), np.cos(heading)], axis=1)
    persistence = np.full(n, 10.0 if fragment else 50.0)
    y, x, _ = persistent_walks(rng, centre - back, heading, n_steps, step, persistence)
    valid = np.arange(n_steps) < (length / step)[:, None]
    width = uniform(rng, (0.025, 0.05) if fragment else (0.4, 0.8), (n, 1))
    level = (12.0 if fragment else 1.0) * rng.lognormal(0, 0.3, (n, 1))
    canvas.path(y, x, valid, level, width)


def sparse(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    empty_probability: float = 0.1,
    objects_per_1000um2: float = 4.0,
) -> np.ndarray:
    """Sparse fields: a few isolated small objects on a lot of empty background.

    With probability ``empty_probability`` the field is empty (all zeros: a
    restoration must not invent structure in background). Otherwise it holds
    at least one object, of the kinds :data:`SPARSE_KINDS` with equal odds:
    single beads (100–200 nm), bead pairs a distance from
    ``pair_separation_um`` apart, tight vesicle clusters, vesicle rings
    (0.5–1.5 µm), bacteria-like rods (1–3 × 0.4–0.8 µm) and thin filament
    fragments (2–6 µm).

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    empty_probability : float
        Probability of an all-zero field.
    objects_per_1000um2 : float
        Mean number of objects per 1000 µm² at ``density=1`` (at least 1).

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1, or all zeros for an empty field.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    if rng.random() < empty_probability:
        return canvas.render()
    n = max(1, rng.poisson(density * objects_per_1000um2 * height * width / 1000))
    # Keep objects ~1 µm inside the field where it is large enough to allow it.
    margin = np.minimum(1.0, 0.25 * np.array([height, width]))
    centre = margin + rng.uniform(0, 1, (n, 2)) * (np.array([height, width]) - 2 * margin)
    kind = rng.integers(len(SPARSE_KINDS), size=n)
    pick = {name: centre[kind == k] for k, name in enumerate(SPARSE_KINDS)}
    _beads(canvas, rng, pick["bead"], pair_separation_um=pair_separation_um, pairs=False)
    _beads(canvas, rng, pick["pair"], pair_separation_um=pair_separation_um, pairs=True)
    _clusters(canvas, rng, pick["cluster"])
    _rings(canvas, rng, pick["ring"])
    _rods(canvas, rng, pick["rod"], fragment=False)
    _rods(canvas, rng, pick["fragment"], fragment=True)
    return canvas.render()
