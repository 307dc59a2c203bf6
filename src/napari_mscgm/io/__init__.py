"""Files in and out: lazy reading, the one atomic writer, OME-TIFF and OME-Zarr.

No torch here: napari's sample-data menu and writer use this package alone.
"""

from __future__ import annotations

from .atomic import (
    atomic_path,
    check_output_path,
    replace_path,
    scratch_path,
    temporary_path,
    write_bytes,
    write_error,
    write_text,
)
from .ome_tiff import TIFF_STREAM_BYTES, write_ome_tiff, write_ome_tiff_from_zarr
from .ome_zarr import ChunkWriter, create_ome_zarr
from .read import RUN_METADATA_KEY, ImageData, file_stem, read_image, read_run_metadata

__all__ = [
    "RUN_METADATA_KEY",
    "TIFF_STREAM_BYTES",
    "ChunkWriter",
    "ImageData",
    "atomic_path",
    "check_output_path",
    "create_ome_zarr",
    "file_stem",
    "read_image",
    "read_run_metadata",
    "replace_path",
    "scratch_path",
    "temporary_path",
    "write_bytes",
    "write_error",
    "write_ome_tiff",
    "write_ome_tiff_from_zarr",
    "write_text",
]
