"""Vesicles and puncta: many diffraction-limited dots, dispersed and clustered, with close pairs."""

from __future__ import annotations

import numpy as np

from .._random import Range, RngLike, loguniform, uniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, Canvas, extent_um

__all__ = ["puncta", "punctum_positions"]


def punctum_positions(
    rng: np.random.Generator,
    height: float,
    width: float,
    *,
    count: float,
    cluster_fraction: float,
    cluster_size: Range,
    cluster_spread_um: Range,
) -> np.ndarray:
    """Positions ``(y, x)``: a dispersed Poisson field plus Thomas clusters.

    ``cluster_fraction`` of the ``count`` puncta (mean) sit in clusters of
    ``cluster_size`` members (mean, Poisson) scattered normally around a
    centre with a per-cluster spread from ``cluster_spread_um`` (endosome and
    Golgi-vesicle clusters, synaptic boutons).
    """
    extent = np.array([height, width])
    dispersed = rng.uniform(0, 1, (rng.poisson((1 - cluster_fraction) * count), 2)) * extent
    mean_size = uniform(rng, cluster_size)
    n_clusters = rng.poisson(cluster_fraction * count / mean_size)
    centres = rng.uniform(0, 1, (n_clusters, 2)) * extent
    members = rng.poisson(mean_size, n_clusters)
    spread = loguniform(rng, cluster_spread_um, n_clusters)
    owner = np.repeat(np.arange(n_clusters), members)
    clustered = centres[owner] + rng.normal(size=(owner.size, 2)) * spread[owner, None]
    return np.concatenate([dispersed, clustered])


def puncta(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    diameter_um: Range = (0.05, 0.3),
    puncta_per_100um2: float = 10.0,
    cluster_fraction: float = 0.4,
    cluster_size: Range = (5.0, 30.0),
    cluster_spread_um: Range = (0.4, 2.0),
    pair_fraction: float = 0.15,
) -> np.ndarray:
    """Vesicles and puncta: sub-resolution spheres of varied size and brightness.

    Diameters are log-uniform in ``diameter_um`` (50–300 nm: synaptic and
    secretory vesicles to endosomes); the dye scales with the membrane area
    (∝ d²) times a log-normal labelling spread (50 %), and 3 % are bright
    aggregates (3–10×). Positions are dispersed plus clustered (see
    :func:`punctum_positions`); a ``pair_fraction`` of puncta get a partner at
    a distance from ``pair_separation_um``.

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    diameter_um : (float, float)
        Range of vesicle diameters.
    puncta_per_100um2 : float
        Mean number of puncta per 100 µm² at ``density=1`` (before partners).
    cluster_fraction : float
        Fraction of puncta in clusters.
    cluster_size : (float, float)
        Range of the mean cluster size (drawn per field).
    cluster_spread_um : (float, float)
        Range (log-uniform, per cluster) of the clusters' standard deviation.
    pair_fraction : float
        Fraction of puncta with a close partner.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    positions = punctum_positions(
        rng,
        height,
        width,
        count=density * puncta_per_100um2 * height * width / 100,
        cluster_fraction=cluster_fraction,
        cluster_size=cluster_size,
        cluster_spread_um=cluster_spread_um,
    )
    paired = positions[rng.random(len(positions)) < pair_fraction]
    angle = rng.uniform(0, 2 * np.pi, len(paired))
    separation = uniform(rng, pair_separation_um, len(paired))[:, None]
    partners = paired + separation * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    positions = np.concatenate([positions, partners])
    n = len(positions)
    if n == 0:  # a tiny field can miss every punctum: keep one
        positions = rng.uniform(0, 1, (1, 2)) * [height, width]
        n = 1
    diameter = loguniform(rng, diameter_um, n)
    mass = (diameter / 0.1) ** 2 * rng.lognormal(0, 0.5, n)
    aggregate = rng.random(n) < 0.03
    mass[aggregate] *= uniform(rng, (3.0, 10.0), int(aggregate.sum()))
    canvas.blobs(positions[:, 0], positions[:, 1], mass, diameter / 2, "sphere")
    return canvas.render()
