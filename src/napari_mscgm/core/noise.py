"""Coordinate-keyed Gaussian noise.

Every random number MSCGM uses is a pure function of::

    (seed, sample, plane (t, c, z), stream, level, channel, absolute y, absolute x)

computed by an integer hash (counter-based RNG) on the device. Nothing depends on
how an image is cut into tiles, in which order they run, how they are batched
or how many workers share them, so a seed is a property of the image, not of
the process. Uniforms come from a 32-bit avalanche hash (Wellons' "lowbias32"),
Gaussians from the Box–Muller transform.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["NoiseKey", "gaussian_field"]

_MASK32 = 0xFFFFFFFF


@dataclass(frozen=True)
class NoiseKey:
    """Where a tile sits: the image-level identity of its noise.

    Attributes
    ----------
    seed : int
        The user's seed (any non-negative integer below 2**64).
    sample : int
        Index of the sample when drawing several.
    plane : tuple of int
        ``(t, c, z)`` index of the 2D plane in the full stack.
    y0, x0 : int
        Absolute position of the tile's first pixel on the target (output) grid.
    """

    seed: int
    sample: int = 0
    plane: tuple[int, int, int] = (0, 0, 0)
    y0: int = 0
    x0: int = 0


def _mix32(h: torch.Tensor) -> torch.Tensor:
    """lowbias32 on int64 tensors holding uint32 values (products wrap; the mask keeps 32 bits)."""
    h = h ^ (h >> 16)
    h = (h * 0x7FEB352D) & _MASK32
    h = h ^ (h >> 15)
    h = (h * 0x846CA68B) & _MASK32
    return h ^ (h >> 16)


def _mix32_int(h: int) -> int:
    """lowbias32 on a Python int (exact), for the per-key prefix."""
    h &= _MASK32
    h ^= h >> 16
    h = (h * 0x7FEB352D) & _MASK32
    h ^= h >> 15
    h = (h * 0x846CA68B) & _MASK32
    return h ^ (h >> 16)


def _key_hash(words: Sequence[int]) -> int:
    h = 0x243F6A88  # arbitrary non-zero start (pi's fraction bits)
    for w in words:
        h = _mix32_int(h ^ (w & _MASK32))
    return h


def gaussian_field(
    keys: Sequence[NoiseKey],
    *,
    stream: int,
    level: int,
    shape: tuple[int, int],
    channels: int = 1,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise for a batch of tiles, keyed by absolute coordinates.

    Parameters
    ----------
    keys : sequence of NoiseKey
        One key per batch item.
    stream : int
        Which use of noise (e.g. one per reverse diffusion step, one per generator).
    level : int
        Wavelet level ``L`` of the grid: pixel ``(i, j)`` of the returned tile sits at
        absolute coordinate ``(y0 / 2**L + i, x0 / 2**L + j)``.
    shape : tuple of int
        ``(h, w)`` of the tile at that level.
    channels : int
        Number of independent channels.

    Returns
    -------
    torch.Tensor
        ``(len(keys), channels, h, w)`` standard normal values.
    """
    h, w = shape
    stride = 1 << level
    out = torch.empty((len(keys), channels, h, w), dtype=dtype, device=device)
    for b, key in enumerate(keys):
        if key.y0 % stride or key.x0 % stride:
            raise ValueError(
                f"tile origin ({key.y0}, {key.x0}) must be a multiple of {stride} at level {level}"
            )
        t, c, z = key.plane
        seed = int(key.seed)
        prefix = _key_hash([seed, seed >> 32, key.sample, t, c, z, stream, level])
        ys = torch.arange(key.y0 // stride, key.y0 // stride + h, device=device, dtype=torch.int64)
        xs = torch.arange(key.x0 // stride, key.x0 // stride + w, device=device, dtype=torch.int64)
        for ch in range(channels):
            base = _mix32_int(prefix ^ ch)
            hy = _mix32((ys & _MASK32) ^ base)
            hxy = _mix32((hy[:, None] ^ (xs[None, :] & _MASK32)) & _MASK32)
            u1 = _mix32(hxy ^ 0x68E31DA4)
            u2 = _mix32(hxy ^ 0xB5297A4D)
            # (u + 0.5) / 2**32 lies in (0, 1): the log is always finite.
            f1 = (u1.to(torch.float64) + 0.5) * (1.0 / 4294967296.0)
            f2 = (u2.to(torch.float64) + 0.5) * (1.0 / 4294967296.0)
            radius = torch.sqrt(-2.0 * torch.log(f1))
            out[b, ch] = (radius * torch.cos((2.0 * math.pi) * f2)).to(dtype)
    return out
