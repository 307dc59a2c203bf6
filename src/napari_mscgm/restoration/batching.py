"""Forward passes in batches, and the one out-of-memory policy.

Tiles of equal shape share forward passes of up to ``batch_size``. When the device
runs out of memory the :class:`OOMPolicy` halves the batch (and remembers it for the
run); with one tile per pass it raises :class:`TileOOMError`, and the restoration
retries with tiles half as large (:meth:`OOMPolicy.smaller_tiles`).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from typing import TYPE_CHECKING, Any

import torch

from ..core.noise import NoiseKey
from ..errors import OutputError, ResourceError, first_line

if TYPE_CHECKING:
    from .spec import RunSpec

__all__ = ["MIN_TILE", "OOMPolicy", "TileOOMError", "is_oom", "restore_batches"]

#: Smallest tile (input pixels) the out-of-memory fallback shrinks to.
MIN_TILE = 32


class TileOOMError(ResourceError):
    """Out of device memory with a single tile per forward pass: the tile must shrink."""


def is_oom(exc: BaseException) -> bool:
    """Out of memory: CUDA's ``OutOfMemoryError``, MPS's / HIP's RuntimeError, or the CPU
    allocator's ("can't allocate memory")."""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom | MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


class OOMPolicy:
    """How a run shrinks its work when the device runs out of memory.

    One per run. Pickled to a worker it starts again from the full batch (each
    process learns its own limit).
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._limit = batch_size
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"batch_size": self.batch_size}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["batch_size"])

    @property
    def batch(self) -> int:
        """Tiles per forward pass now."""
        return self._limit

    def shrink_batch(self, tried: int, exc: BaseException, device: str, shape: tuple) -> None:
        """A pass of ``tried`` tiles ran out of memory: halve, or ask for smaller tiles."""
        if tried == 1:
            h, w = shape
            raise TileOOMError(
                f"out of {device} memory with one {h}×{w} tile per forward pass "
                f"({first_line(exc)}); pass a smaller tile_size, precision='bfloat16' or "
                "device='cpu'"
            ) from None
        with self._lock:
            self._limit = min(self._limit, tried // 2)
        warnings.warn(
            f"napari-mscgm: out of {device} memory with {tried} tiles per forward pass; "
            f"retrying with {tried // 2}",
            ResourceWarning,
            stacklevel=3,
        )

    def smaller_tiles(
        self, tile: int | None, overlap: int, plane: tuple[int, int], device: str
    ) -> tuple[int, int]:
        """The tile size and overlap to retry with after a :class:`TileOOMError`."""
        current = max(plane) if tile is None else tile
        if current // 2 < MIN_TILE:
            raise OutputError(
                f"out of {device} memory even with one {current}-pixel tile per "
                "forward pass; use a smaller model, bfloat16 or the CPU"
            ) from None
        tile, overlap = current // 2, min(overlap, current // 8)
        self._limit = self.batch_size  # smaller tiles: try full batches again
        warnings.warn(
            f"napari-mscgm: out of {device} memory with one tile per forward pass; "
            f"retrying with tile_size={tile}, overlap={overlap}",
            ResourceWarning,
            stacklevel=4,
        )
        return tile, overlap


def restore_batches(model: Any, run: RunSpec, items: list, plane: tuple[int, int, int]) -> list:
    """Run ``model.sample`` over ``(tile_input, sample, y0, x0)`` items in batches.

    ``tile_input`` is a ``(1, C, h, w)`` tensor on the target grid, ``(y0, x0)`` its
    origin there. Returns one ``(h, w)`` float32 array per item.
    """
    device = next(model.parameters()).device
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if run.precision == "bfloat16" and device.type == "cuda"
        else contextlib.nullcontext()
    )
    out: list = [None] * len(items)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, item in enumerate(items):
        by_shape.setdefault(item[0].shape[-2:], []).append(i)
    for indices in by_shape.values():
        pos = 0
        while pos < len(indices):
            chosen = indices[pos : pos + min(run.batch_size, run.oom.batch)]
            degraded = torch.cat([items[i][0] for i in chosen]).to(device)
            keys = [
                NoiseKey(
                    seed=run.seed, sample=items[i][1], plane=plane, y0=items[i][2], x0=items[i][3]
                )
                for i in chosen
            ]
            try:
                with autocast:
                    restored = model.sample(degraded, keys=keys, steps=run.steps, eta=run.eta)
            except Exception as exc:
                if not is_oom(exc):
                    raise
                shape = tuple(degraded.shape[-2:])
                del degraded
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                run.oom.shrink_batch(len(chosen), exc, device.type, shape)
                continue
            restored = restored.float()[:, 0].cpu().numpy()
            for j, i in enumerate(chosen):
                out[i] = restored[j]
            pos += len(chosen)
            run.progress.tick()
    return out


def constant_ticks(run: RunSpec, widths: list[int]) -> None:
    """The progress a group of constant tiles of these widths would have given."""
    counts: dict[int, int] = {}
    for w in widths:
        counts[w] = counts.get(w, 0) + 1
    for n in counts.values():
        for _ in range(-(-n * run.samples // run.batch_size)):
            run.progress.tick()
