"""Checks of the input image: its type, shape and pixel values, with one-line messages.

In-memory images are checked whole before any work; lazy ones tile by tile as they
are read (:func:`check_tile`), so a huge stack is never read twice.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = [
    "FLOAT32_MAX",
    "NORMALISED_LIMIT",
    "check_array",
    "check_not_empty",
    "check_tile",
    "check_values",
]

#: Largest magnitude the float32 output can hold.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Normalised inputs are clipped to ± this many percentile ranges: far beyond any real
#: signal (a saturated pixel of a dim 16-bit image is a few hundred), small enough that
#: the networks' float32 arithmetic cannot overflow.
NORMALISED_LIMIT = 1e4


def check_array(image: Any) -> Any:
    """Refuse what is not a usable 2D–5D numeric array; return it (a plain ndarray for numpy)."""
    ndim = getattr(image, "ndim", None)
    if not isinstance(ndim, int) or not hasattr(image, "shape"):
        raise InputError(f"expected an array, got {type(image).__name__}")
    if isinstance(image, np.ma.MaskedArray):
        raise InputError("masked arrays are not supported; fill the masked pixels first")
    if isinstance(image, np.ndarray) and type(image) is not np.ndarray:
        image = np.asarray(image)  # np.matrix and other subclasses index differently
    _check_dtype(image)
    if not all(isinstance(n, numbers.Integral) for n in image.shape):
        raise InputError(
            f"the image's shape {tuple(image.shape)} is not fully known; for a dask array "
            "call .compute_chunk_sizes() first"
        )
    return image


def check_not_empty(shape: tuple[int, ...]) -> None:
    """Refuse an image with a zero-length axis."""
    if any(n == 0 for n in shape):
        raise InputError(f"the image is empty (shape {tuple(shape)})")


def _check_dtype(image: Any) -> None:
    try:
        dtype = np.dtype(image.dtype)
    except (AttributeError, TypeError):
        raise InputError(
            f"cannot read the pixel type of a {type(image).__name__}; pass a numpy, dask or "
            "zarr array"
        ) from None
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"complex images are not supported (dtype {dtype}); pass the magnitude")
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise InputError(f"unsupported pixel type {dtype}")


def check_values(image: np.ndarray, axes: str) -> None:
    """Refuse NaN / Inf pixels and values beyond float32 in an in-memory image.

    Counted plane by plane, so the check needs no second image-sized buffer.
    """
    if image.dtype.kind != "f":
        return  # integers and bool are always finite and within float32's range
    bad, first, largest = 0, None, 0.0
    for index in np.ndindex(image.shape[:-2]):
        plane = image[index]
        finite = np.isfinite(plane)
        if not finite.all():
            if first is None:
                first = (*index, *np.unravel_index(int(np.argmin(finite)), plane.shape))
            bad += plane.size - int(np.count_nonzero(finite))
        elif bad == 0:
            largest = max(largest, float(np.abs(plane).max()))
    if bad:
        where = ", ".join(f"{a}={i}" for a, i in zip(axes, first, strict=True))
        raise InputError(
            f"the image has {bad} non-finite pixel(s) (NaN or Inf), the first at {where}; "
            "replace them first, e.g. with numpy.nan_to_num(image)"
        )
    if largest > FLOAT32_MAX:
        raise InputError(
            f"pixel values up to {largest:.3g} do not fit the float32 output "
            f"(largest {FLOAT32_MAX:.3g}); rescale the image first"
        )


def check_tile(tile: np.ndarray, plane: tuple[int, int, int], y0: int, x0: int) -> None:
    """Refuse NaN / Inf and values beyond float32 in a tile read from a lazy input."""
    finite = np.isfinite(tile)
    t, c, z = plane
    if not finite.all():
        bad = tile.size - int(np.count_nonzero(finite))
        y, x = np.unravel_index(int(np.argmin(finite)), tile.shape)
        raise InputError(
            f"plane t={t}, c={c}, z={z} has non-finite pixels, NaN or Inf ({bad} in the tile at "
            f"y={y0}, x={x0}, the first at y={y0 + y}, x={x0 + x}); replace them first, "
            "e.g. with numpy.nan_to_num"
        )
    largest = float(np.abs(tile).max())
    if largest > FLOAT32_MAX:
        raise InputError(
            f"plane t={t}, c={c}, z={z} has pixel values up to {largest:.3g}, beyond the "
            "float32 output; rescale the image first"
        )
