"""Sub-diffraction fluorescent beads, with close pairs only the target resolves."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...errors import InputError
from .._random import Range, RngLike, uniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, Canvas, extent_um

__all__ = ["BeadLayout", "bead_positions", "beads", "render_beads"]


class BeadLayout(NamedTuple):
    """Beads of a :func:`beads` scene.

    Attributes
    ----------
    positions_um : ndarray, shape (n, 2)
        Centres ``(y, x)`` in µm from the grid's top-left corner.
    diameters_um : ndarray, shape (n,)
    brightness : ndarray, shape (n,)
        Relative amount of dye (∝ volume, with labelling spread).
    pairs : ndarray of int, shape (p, 2)
        Indices of the deliberately close pairs.
    """

    positions_um: np.ndarray
    diameters_um: np.ndarray
    brightness: np.ndarray
    pairs: np.ndarray


def bead_positions(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    diameter_um: Range = (0.1, 0.2),
    beads_per_100um2: float = 1.5,
    pairs_per_100um2: float = 0.5,
) -> BeadLayout:
    """Draw a bead layout: isolated beads plus close pairs.

    Pair separations are uniform in ``pair_separation_um`` (by default between
    the target and the input FWHM: resolved by the target, not by the input);
    at least one pair is always drawn.

    Parameters
    ----------
    shape : tuple of int
        Grid shape in pixels.
    pixel_size_um : float
        Grid pixel in µm.
    rng : numpy.random.Generator or int or None
        Random source.
    density : float
        Multiplier of the bead and pair counts.
    pair_separation_um : (float, float)
        Range of centre-to-centre distances of the close pairs.
    diameter_um : (float, float)
        Range of bead diameters.
    beads_per_100um2, pairs_per_100um2 : float
        Mean counts per 100 µm² at ``density=1``.

    Returns
    -------
    BeadLayout
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    if not 0 < pair_separation_um[0] <= pair_separation_um[1]:
        raise InputError(f"pair_separation_um {pair_separation_um} must be 0 < low <= high")
    area = height * width
    n_single = rng.poisson(density * beads_per_100um2 * area / 100)
    n_pairs = max(1, rng.poisson(density * pairs_per_100um2 * area / 100))
    extent = np.array([height, width])
    singles = rng.uniform(0, 1, (n_single, 2)) * extent
    centres = rng.uniform(0, 1, (n_pairs, 2)) * extent
    angle = rng.uniform(0, np.pi, n_pairs)
    half = uniform(rng, pair_separation_um, n_pairs)[:, None] / 2
    offset = half * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    positions = np.concatenate([singles, centres - offset, centres + offset])
    n = len(positions)
    diameters = uniform(rng, diameter_um, n)
    brightness = (diameters / np.mean(diameter_um)) ** 3 * rng.lognormal(0, 0.2, n)
    first = n_single + np.arange(n_pairs)
    return BeadLayout(positions, diameters, brightness, np.stack([first, first + n_pairs], axis=1))


def render_beads(layout: BeadLayout, shape: tuple[int, int], *, pixel_size_um: float) -> np.ndarray:
    """Draw a :class:`BeadLayout` as projected spheres; float64 map with a peak of 1."""
    extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    y, x = layout.positions_um[:, 0], layout.positions_um[:, 1]
    canvas.blobs(y, x, layout.brightness, layout.diameters_um / 2, "sphere")
    return canvas.render()


def beads(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
) -> np.ndarray:
    """Sub-diffraction beads (100–200 nm) with random brightness, including close pairs.

    ``render_beads(bead_positions(...), ...)`` with the same arguments and seed.

    Parameters
    ----------
    shape : tuple of int
        Grid shape in pixels.
    pixel_size_um : float
        Grid pixel in µm.
    rng : numpy.random.Generator or int or None
        Random source.
    density : float
        Multiplier of the object counts.
    pair_separation_um : (float, float)
        Separations the scene deliberately populates (see :func:`bead_positions`).

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    layout = bead_positions(
        shape,
        pixel_size_um=pixel_size_um,
        rng=rng,
        density=density,
        pair_separation_um=pair_separation_um,
    )
    return render_beads(layout, shape, pixel_size_um=pixel_size_um)
