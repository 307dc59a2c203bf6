"""Tile layout: overlapping YX tiles and their seamless blending weights (per axis, input pixels).

The axis is cut into *cores* of length ``stride`` (the chunks of the output); every
tile is its core plus a *halo* of ``halo`` pixels on each side (clipped at the image
edge)::

    tile_size = stride + 2 * halo        overlap = 2 * halo

Neighbouring tiles therefore overlap by ``overlap`` pixels centred on their common
core boundary. In that band the two tiles are blended with raised-cosine weights
that sum to exactly one (a partition of unity), so no normalisation is needed and
no seam is visible; away from boundaries a tile's weight is 1.

Alignment. The coordinate-keyed noise (:mod:`napari_mscgm.core.noise`) needs every
tile origin on the target grid to be a multiple of ``model.size_multiple``. Tile
origins (``k * stride - halo``) are multiples of ``align`` input pixels, with
``align * scale`` a multiple of ``size_multiple``: ``stride`` is snapped down and
``halo`` up to multiples of ``align``. Tile ends need no alignment (the model pads
bottom/right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["AxisPlan", "blend_weights", "plan_axis", "tile_alignment"]


def tile_alignment(size_multiple: int, scale: int) -> int:
    """Input-pixel step that puts target-grid origins on multiples of ``size_multiple``."""
    return size_multiple // math.gcd(size_multiple, scale)


@dataclass(frozen=True)
class AxisPlan:
    """The tiling of one spatial axis, in input pixels.

    Attributes
    ----------
    cores : tuple of (int, int)
        ``[start, stop)`` of each core; they partition the axis.
    tiles : tuple of (int, int)
        ``[start, stop)`` of each tile: its core plus the halo, clipped to the axis.
    halo : int
        Pixels each tile reaches past its core (half the overlap).
    """

    cores: tuple[tuple[int, int], ...]
    tiles: tuple[tuple[int, int], ...]
    halo: int

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in self.cores)


def plan_axis(length: int, *, tile_size: int | None, overlap: int, align: int) -> AxisPlan:
    """Cut an axis of ``length`` input pixels into aligned overlapping tiles.

    ``tile_size=None`` (or a tile at least as long as the axis) gives one tile.
    A remainder core shorter than the overlap is merged into the previous core,
    so blending ramps never overlap each other; when alignment forces it, a
    tile can be slightly longer than ``tile_size``.
    """
    if tile_size is None or length <= tile_size:
        return AxisPlan(((0, length),), ((0, length),), 0)
    halo = -(-(overlap // 2) // align) * align if overlap > 0 else 0
    stride = max(align, (tile_size - 2 * halo) // align * align)
    # Snapping may leave a core shorter than the overlap: grow it, so ramps never meet.
    stride = max(stride, 2 * halo)
    starts = list(range(0, length, stride))
    if len(starts) > 1 and length - starts[-1] < max(2 * halo, 1):
        starts.pop()
    cores = tuple(zip(starts, [*starts[1:], length], strict=True))
    tiles = tuple((max(0, a - halo), min(length, b + halo)) for a, b in cores)
    return AxisPlan(cores, tiles, halo)


def blend_weights(plan: AxisPlan, index: int, scale: int) -> np.ndarray:
    """Blending weight of tile ``index`` along one axis, on the target grid.

    Raised cosine across each ``2 * halo`` band centred on a core boundary; the
    weights of the two tiles sharing a band sum to 1 at every pixel.
    """
    t0, t1 = (v * scale for v in plan.tiles[index])
    c0, c1 = (v * scale for v in plan.cores[index])
    band = 2 * plan.halo * scale
    x = np.arange(t0, t1, dtype=np.float64)
    w = np.ones_like(x)
    if band:
        if index > 0:  # rising ramp over [c0 - halo, c0 + halo)
            u = np.clip((x - (c0 - band / 2) + 0.5) / band, 0.0, 1.0)
            w *= 0.5 * (1.0 - np.cos(np.pi * u))
        if index < len(plan.cores) - 1:  # falling ramp over [c1 - halo, c1 + halo)
            u = np.clip((x - (c1 - band / 2) + 0.5) / band, 0.0, 1.0)
            w *= 0.5 * (1.0 + np.cos(np.pi * u))
    return w.astype(np.float32)
