"""Axes of an N-D image: validation, inference, and the 5D ``TCZYX`` view the engine works on.

There is one table of inferred axes. napari layers follow it too, except that a
layer of fewer than 5 dimensions has no channel axis of its own (napari puts
channels in separate layers), so there its ``C`` is read as ``T``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["CANONICAL", "INFERRED_AXES", "canonical_axes", "from_tczyx", "layer_axes", "to_tczyx"]

CANONICAL = "TCZYX"
#: Axes of an image given without them, by its number of dimensions.
INFERRED_AXES = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}


def _check_ndim(ndim: int) -> None:
    if ndim not in INFERRED_AXES:
        raise InputError(f"expected a 2D to 5D image, got {ndim} dimensions")


def canonical_axes(axes: str | None, ndim: int, *, shape: tuple[int, ...] | None = None) -> str:
    """Check ``axes`` (already validated letters) against ``ndim``; infer them when None.

    With ``shape``, an inferred layout whose last dimension has 3 or 4 values while
    the two before it are several times larger is refused: that is an RGB(A) image,
    which inference would read as a 3- or 4-pixel-wide stack.
    """
    if axes is None:
        _check_ndim(ndim)
        if shape is not None and ndim >= 3 and shape[-1] in (3, 4):
            if min(shape[-3], shape[-2]) >= 4 * shape[-1]:
                colour = "RGB" if shape[-1] == 3 else "RGBA"
                suggestion = {3: "YXC", 4: "ZYXC", 5: "TZYXC"}[ndim]
                raise InputError(
                    f"the image's shape {tuple(shape)} ends in {shape[-1]} values like "
                    f"{colour} colour, which would be read as X; pass axes, e.g. "
                    f"axes={suggestion!r} to restore each colour channel on its own"
                )
        return INFERRED_AXES[ndim]
    if len(axes) != ndim:
        raise InputError(
            f"axes {axes!r} has {len(axes)} letters but the image has {ndim} dimensions"
        )
    return axes


def layer_axes(ndim: int) -> str:
    """Axes of a napari image layer with ``ndim`` dimensions (see the module docstring)."""
    if ndim not in INFERRED_AXES:
        raise InputError(
            f"The layer has {ndim} dimensions; MSCGM restores 2D to 5D images. Add a layer "
            "with fewer axes first, e.g. viewer.add_image(layer.data[0]) in the napari console."
        )
    axes = INFERRED_AXES[ndim]
    return axes if "T" in axes else axes.replace("C", "T")


def to_tczyx(image: Any, axes: str) -> Any:
    """View ``image`` (numpy, dask or zarr) as 5D ``TCZYX`` without loading it."""
    import dask.array as da

    if not isinstance(image, np.ndarray | da.Array):
        image = da.from_array(image, chunks=image.chunks if hasattr(image, "chunks") else "auto")
    order = [axes.index(a) for a in CANONICAL if a in axes]
    view = image.transpose(order)
    present = [a for a in CANONICAL if a in axes]
    index = tuple(slice(None) if a in present else None for a in CANONICAL)
    return view[index]


def from_tczyx(array: Any, axes: str) -> Any:
    """Back from 5D ``TCZYX`` to ``axes`` (numpy or dask; indexing keeps dask lazy)."""
    view = array[tuple(slice(None) if a in axes else 0 for a in CANONICAL)]
    present = [a for a in CANONICAL if a in axes]
    return view.transpose([present.index(a) for a in axes])
