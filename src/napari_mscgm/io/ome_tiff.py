"""OME-TIFF output: atomic, with physical sizes and the run metadata in a MapAnnotation.

Small images are written in one piece; large ones (a restoration streamed through a
temporary OME-Zarr) band by band, so memory holds one band of tiles at a time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path, check_output_path
from .read import RUN_METADATA_KEY

__all__ = ["TIFF_STREAM_BYTES", "write_ome_tiff", "write_ome_tiff_from_zarr"]

#: OME-TIFFs larger than this are written band by band instead of in one piece.
TIFF_STREAM_BYTES = 64 * 2**20


def _ome_tiff_metadata(
    axes: str,
    pixel_size_um: tuple[float | None, float | None, float | None],
    metadata: dict | None,
    channel_names: list[str] | None,
) -> dict[str, Any]:
    ome: dict[str, Any] = {"axes": axes}
    for axis, size in zip("ZYX", pixel_size_um, strict=True):
        if size is not None and axis in axes:
            ome[f"PhysicalSize{axis}"] = float(size)
            ome[f"PhysicalSize{axis}Unit"] = "µm"
    if metadata is not None:
        text = json.dumps(metadata, default=str)
        ome["Description"] = text
        ome["MapAnnotation"] = {RUN_METADATA_KEY: text}
    if channel_names and "C" in axes:
        ome["Channel"] = {"Name": list(channel_names)}
    return ome


def write_ome_tiff(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    axes: str = "TCZYX",
    pixel_size_um: tuple[float | None, float | None, float | None] = (None, None, None),
    metadata: dict | None = None,
    channel_names: list[str] | None = None,
) -> Path:
    """Write ``data`` as an OME-TIFF atomically, with physical sizes and run metadata.

    The run metadata is stored as JSON in an OME ``MapAnnotation`` under the key
    ``napari-mscgm`` and in the image ``Description``; see :func:`read_run_metadata`.
    """
    import tifffile

    path = Path(path)
    check_output_path(path)
    ome = _ome_tiff_metadata(axes, pixel_size_um, metadata, channel_names)
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            data,
            ome=True,
            bigtiff=data.nbytes > 2**31,
            photometric="minisblack",
            metadata=ome,
            tile=(256, 256) if data.shape[-1] >= 512 and data.shape[-2] >= 512 else None,
        )
    return path


def write_ome_tiff_from_zarr(
    path: str | os.PathLike,
    source: Any,
    *,
    axes: str = "TCZYX",
    pixel_size_um: tuple[float | None, float | None, float | None] = (None, None, None),
    metadata: dict | None = None,
    channel_names: list[str] | None = None,
    tile: int = 256,
) -> Path:
    """Stream a (zarr) array into a tiled BigTIFF OME-TIFF, one band of tiles at a time.

    Memory holds one ``tile``-high band of one plane, whatever the image size.
    Small images are written in one piece by :func:`write_ome_tiff`.
    """
    import tifffile

    path = Path(path)
    shape = tuple(source.shape)
    if np.prod(shape) * 4 <= TIFF_STREAM_BYTES:
        return write_ome_tiff(
            path,
            np.asarray(source[...], dtype=np.float32),
            axes=axes,
            pixel_size_um=pixel_size_um,
            metadata=metadata,
            channel_names=channel_names,
        )
    check_output_path(path)
    height, width = shape[-2:]
    planes = int(np.prod(shape[:-2]))

    def tiles():
        for p in range(planes):
            index = np.unravel_index(p, shape[:-2]) if planes > 1 or shape[:-2] else ()
            for y0 in range(0, height, tile):
                band = np.asarray(source[(*index, slice(y0, y0 + tile), slice(None))], np.float32)
                for x0 in range(0, width, tile):
                    piece = band[:, x0 : x0 + tile]
                    if piece.shape != (tile, tile):  # tifffile wants whole tiles
                        piece = np.pad(
                            piece, ((0, tile - piece.shape[0]), (0, tile - piece.shape[1]))
                        )
                    yield piece

    ome = _ome_tiff_metadata(axes, pixel_size_um, metadata, channel_names)
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            tiles(),
            shape=shape,
            dtype=np.float32,
            tile=(tile, tile),
            ome=True,
            bigtiff=True,
            photometric="minisblack",
            metadata=ome,
        )
    return path
