"""Reading microscopy files and writing OME-TIFF results.

Reading goes through the BioImage API (bioio; aicsimageio when bioio cannot
open a file and aicsimageio is installed), which gives a lazy 5D TCZYX dask
array and physical pixel sizes. Writing is atomic: data go to a temporary
file beside the target, which is renamed only when complete, so a failed or
interrupted run never leaves a partial file under the final name.
"""

from __future__ import annotations

import json
import logging
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, OutputError

__all__ = [
    "ImageData",
    "read_image",
    "read_run_metadata",
    "temporary_path",
    "write_ome_tiff",
]

RUN_METADATA_KEY = "napari-mscgm"


@dataclass(frozen=True)
class ImageData:
    """A lazily read image.

    Attributes
    ----------
    data : dask.array.Array
        5D ``TCZYX`` pixels.
    pixel_size_um : tuple
        ``(z, y, x)`` physical sizes in µm; ``None`` where unknown.
    name : str
        File stem, for naming results.
    channel_names : list of str or None
    """

    data: Any
    pixel_size_um: tuple[float | None, float | None, float | None]
    name: str
    channel_names: list[str] | None = None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _first_sentence(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(". ")[0].rstrip(".")


def read_image(path: str | os.PathLike) -> ImageData:
    """Open an image file lazily as TCZYX with its physical pixel sizes.

    Raises
    ------
    InputError
        The file does not exist or no installed reader can open it.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir() and not path.name.lower().endswith(".zarr"):
        raise InputError(f"{path}: is a directory, not an image file")
    errors = []
    try:
        from bioio import BioImage

        # bioio logs every reader it tries; the one failure that matters is raised below.
        logging.getLogger("bioio").setLevel(logging.CRITICAL)

        image = BioImage(path)
        data = image.get_image_dask_data("TCZYX")
        sizes = image.physical_pixel_sizes
        channels = list(image.channel_names) if image.channel_names else None
        return ImageData(data, (sizes.Z, sizes.Y, sizes.X), _stem(path), channels)
    except Exception as exc:  # every reader failure becomes one clear message below
        errors.append(f"bioio: {_first_sentence(exc)}")
    try:
        from aicsimageio import AICSImage
    except ImportError:
        pass
    else:
        try:
            image = AICSImage(path)
            data = image.get_image_dask_data("TCZYX")
            sizes = image.physical_pixel_sizes
            return ImageData(data, (sizes.Z, sizes.Y, sizes.X), _stem(path), None)
        except Exception as exc:
            errors.append(f"aicsimageio: {_first_sentence(exc)}")
    raise InputError(f"{path}: cannot be read as an image ({'; '.join(errors)})")


def temporary_path(path: Path) -> Path:
    """A sibling path for writing ``path`` atomically (same directory, same filesystem)."""
    return path.with_name(f".{path.name}.{os.getpid()}.part")


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
    if not path.parent.exists():
        raise OutputError(f"{path.parent}: output directory does not exist")
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
    tmp = temporary_path(path)
    try:
        big = data.nbytes > 2**31
        tifffile.imwrite(
            tmp,
            data,
            ome=True,
            bigtiff=big,
            photometric="minisblack",
            metadata=ome,
            tile=(256, 256) if data.shape[-1] >= 512 and data.shape[-2] >= 512 else None,
        )
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_run_metadata(path: str | os.PathLike) -> dict:
    """The napari-mscgm run metadata embedded in an OME-TIFF written by :func:`write_ome_tiff`."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    if not xml:
        raise InputError(f"{path}: has no OME metadata")
    root = ET.fromstring(xml)
    for element in root.iter():
        if element.tag.endswith("}M") and element.get("K") == RUN_METADATA_KEY:
            return json.loads(element.text or "{}")
    raise InputError(f"{path}: has no napari-mscgm run metadata")
