"""The memory check before a CPU run: refuse a forward pass that cannot fit.

Running out of CPU memory is not recoverable like on a GPU: the allocation fails
with a bare RuntimeError, or the operating system kills the process. So a CPU run
whose largest forward pass would not fit in the free memory is refused before it
starts, with a tile size that would fit.
"""

from __future__ import annotations

from typing import Any

from ..device import available_memory
from ..errors import ResourceError
from .batching import MIN_TILE
from .layout import AxisPlan

__all__ = ["check_memory", "pass_bytes"]

#: Bytes per target pixel and sample held besides the forward pass: the tile's
#: float64 result, its denormalised and weighted copies and the output chunk.
_POSTPROCESS_BYTES = 64


def pass_bytes(model: Any, tile_h: int, tile_w: int, batch: int, samples: int) -> int:
    """CPU memory of one forward pass over ``batch`` tiles of ``tile_h × tile_w`` input pixels."""
    h, w = tile_h * model.scale, tile_w * model.scale
    return model.forward_bytes(h, w, batch) + _POSTPROCESS_BYTES * h * w * max(batch, samples)


def check_memory(
    model: Any,
    ys: AxisPlan,
    xs: AxisPlan,
    *,
    tile: int | None,
    batch_size: int,
    samples: int,
    plane: tuple[int, int],
) -> None:
    """Raise :class:`ResourceError` when the largest forward pass exceeds the free memory."""
    available = available_memory()
    if available is None:
        return
    tile_h = max(b - a for a, b in ys.tiles)
    tile_w = max(b - a for a, b in xs.tiles)
    group = max(1, batch_size // samples)
    batch = min(batch_size, min(group, len(xs.tiles)) * samples)
    needed = pass_bytes(model, tile_h, tile_w, batch, samples)
    if needed <= available:
        return
    height, width = plane
    # Tiles come batch_size at a time: the suggestion must fit with the batch asked for,
    # and be smaller than the tiles that did not fit.
    suggestion = 256 if tile is None else max(MIN_TILE, min(256, tile // 2))

    def fits(size: int, tiles: int) -> bool:
        return pass_bytes(model, size, size, tiles, samples) <= available

    while suggestion > MIN_TILE and not fits(suggestion, batch_size):
        suggestion //= 2
    if tile is None or (tile_h == height and tile_w == width):
        what = f"restoring a {height}×{width} plane untiled"
    else:
        what = f"restoring {tile_h}×{tile_w} tiles, {batch} per forward pass,"
    advice = f"use tile_size={suggestion}"
    if not fits(suggestion, batch_size):
        advice += " and batch_size=1"
    raise ResourceError(
        f"{what} needs about {_gb(needed)} of memory but {_gb(available)} is available; {advice}"
    )


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n < 1e10 else f"{n / 1e9:.0f} GB"
