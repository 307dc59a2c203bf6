"""Composite fields: two or three structure classes overlaid, each with its own brightness."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._random import Range, RngLike, loguniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, extent_um

__all__ = ["composite", "composite_layers"]


def composite_layers(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    classes: Sequence[str] | None = None,
    n_classes: tuple[int, int] = (2, 3),
    brightness: Range = (0.25, 1.0),
) -> list[tuple[str, float, np.ndarray]]:
    """The layers of a :func:`composite` field: ``(class name, brightness, dye map)``.

    The classes are distinct, drawn from ``classes`` (default: every concrete
    class of :data:`~.MIXED_SCENES`); each layer is rendered from its own
    child seed, so adding a layer does not change the others.
    """
    from . import MIXED_SCENES, SCENES  # the registry imports this module

    rng = np.random.default_rng(rng)
    extent_um(shape, pixel_size_um)
    pool = tuple(MIXED_SCENES if classes is None else classes)
    low, high = n_classes
    count = min(int(rng.integers(low, high + 1)), len(pool))
    names = [pool[i] for i in rng.choice(len(pool), count, replace=False)]
    levels = loguniform(rng, brightness, count)
    seeds = rng.integers(0, 2**63, count)
    return [
        (
            name,
            float(level),
            SCENES[name](
                shape,
                pixel_size_um=pixel_size_um,
                rng=np.random.default_rng(seed),
                density=density,
                pair_separation_um=pair_separation_um,
            ),
        )
        for name, level, seed in zip(names, levels, seeds, strict=True)
    ]


def composite(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    classes: Sequence[str] | None = None,
    n_classes: tuple[int, int] = (2, 3),
    brightness: Range = (0.25, 1.0),
) -> np.ndarray:
    """Two or three structure classes in one field, as in a multi-label sample.

    The sum of :func:`composite_layers`, each layer (peak 1) scaled by its
    log-uniform ``brightness``, renormalised to a peak of 1.

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    classes : sequence of str or None
        Names in :data:`~.SCENES` to choose from; None: all concrete classes.
    n_classes : (int, int)
        Range (inclusive) of the number of classes overlaid.
    brightness : (float, float)
        Range of the layers' relative peak brightness.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    layers = composite_layers(
        shape,
        pixel_size_um=pixel_size_um,
        rng=rng,
        density=density,
        pair_separation_um=pair_separation_um,
        classes=classes,
        n_classes=n_classes,
        brightness=brightness,
    )
    image = np.zeros(tuple(shape))
    for _, level, layer in layers:
        image += level * layer
    peak = image.max()
    return image / peak if peak > 0 else image
