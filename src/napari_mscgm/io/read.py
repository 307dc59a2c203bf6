"""Reading microscopy files lazily, with their physical pixel sizes, and reading run metadata back.

Reading goes through the BioImage API (bioio; aicsimageio when bioio cannot open
a file and aicsimageio is installed), which gives a lazy 5D TCZYX dask array and
physical pixel sizes; ``.zarr`` inputs go through bioio-ome-zarr. TIFF files are
checked for truncation first.
"""

from __future__ import annotations

import json
import logging
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, first_line

__all__ = ["RUN_METADATA_KEY", "ImageData", "file_stem", "read_image", "read_run_metadata"]

#: Where outputs keep the run metadata: OME-TIFF MapAnnotation key, Zarr attribute, layer metadata.
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
    source : str or None
        The path it was read from (recorded in the run metadata of its restoration).
    """

    data: Any
    pixel_size_um: tuple[float | None, float | None, float | None]
    name: str
    channel_names: list[str] | None = None
    source: str | None = None


def file_stem(path: Path) -> str:
    """The file name without its image suffix (``.ome.tif``, ``.ome.zarr``, ``.tif`` …)."""
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _first_sentence(exc: Exception) -> str:
    return first_line(exc).split(". ")[0].rstrip(".")


def read_image(path: str | os.PathLike) -> ImageData:
    """Open an image file lazily as TCZYX with its physical pixel sizes.

    RGB(A) files (samples per pixel) come back with the colours as channels, so
    each colour is restored on its own. TIFF files are checked first for
    truncation (pixel data or image directories past the end of the file), which
    the readers would otherwise report only when the pixels are read, or not at all.

    Raises
    ------
    InputError
        The file does not exist, is not a regular file, is a truncated or damaged
        TIFF, or no installed reader can open it.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        if not path.name.lower().endswith(".zarr"):
            raise InputError(f"{path}: is a directory, not an image file")
    elif not path.is_file():  # a FIFO or device would block or never end
        raise InputError(f"{path}: is not a regular file")
    else:
        _check_tiff(path)
    errors = []
    try:
        from bioio import BioImage

        # bioio logs every reader it tries; the one failure that matters is raised below.
        logging.getLogger("bioio").setLevel(logging.CRITICAL)
        image = BioImage(path)
        data, channels = _tczyx(image, path)
        sizes = image.physical_pixel_sizes
        channels = channels or (list(image.channel_names) if image.channel_names else None)
        return ImageData(data, (sizes.Z, sizes.Y, sizes.X), file_stem(path), channels, str(path))
    except InputError:
        raise
    except Exception as exc:  # every reader failure becomes one clear message below
        errors.append(f"bioio: {_first_sentence(exc)}")
    try:
        from aicsimageio import AICSImage
    except ImportError:
        pass
    else:
        try:
            image = AICSImage(path)
            data, channels = _tczyx(image, path)
            sizes = image.physical_pixel_sizes
            return ImageData(
                data, (sizes.Z, sizes.Y, sizes.X), file_stem(path), channels, str(path)
            )
        except InputError:
            raise
        except Exception as exc:
            errors.append(f"aicsimageio: {_first_sentence(exc)}")
    raise InputError(f"{path}: cannot be read as an image ({'; '.join(errors)})")


def _tczyx(image: Any, path: Path) -> tuple[Any, list[str] | None]:
    """The TCZYX dask data of a BioImage/AICSImage; RGB(A) samples become channels.

    Asking for ``TCZYX`` alone would silently keep only the first sample (red).
    """
    dims = image.dims
    samples = dims.S if "S" in dims.order else 1
    if samples <= 1:
        return image.get_image_dask_data("TCZYX"), None
    if dims.C > 1:
        raise InputError(
            f"{path}: has {dims.C} channels of {samples} samples (RGB) each; "
            "save it with one channel axis"
        )
    names = list("RGBA")[:samples] if samples <= 4 else None
    return image.get_image_dask_data("TSZYX"), names


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _check_tiff(path: Path) -> None:
    """Refuse a truncated or structurally damaged TIFF before any reader opens it.

    tifffile does not raise on a cut-off file: it logs the bad offset and shows
    fewer planes, or fails only when the missing pixels are read.
    """
    with open(path, "rb") as fh:
        if fh.read(4) not in _TIFF_MAGIC:
            return
    import tifffile

    size = path.stat().st_size
    records = _Records()
    logger = logging.getLogger("tifffile")
    logger.addHandler(records)
    try:
        with tifffile.TiffFile(path) as tif:
            tif.pages.useframes = True  # light frames: offsets only, fast for many pages
            for page in tif.pages:  # reads every image directory
                ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)]
                if ends and max(ends) > size:
                    raise InputError(
                        f"{path}: truncated TIFF: its pixel data reach byte {max(ends)} but the "
                        f"file has {size} bytes; the copy or write was incomplete"
                    )
            series = tif.series[0] if tif.series else None  # parses OME/ImageJ metadata
            if series is not None:
                # Beyond T, C, Z (and the RGB samples axis S) there is no place for an axis.
                sizes = [n for a, n in zip(series.axes, series.shape, strict=True) if a != "S"]
                if sum(n > 1 for n in sizes[:-2]) > 3:
                    raise InputError(
                        f"{path}: has {len(sizes)} dimensions (axes {series.axes}, shape "
                        f"{tuple(series.shape)}); napari-mscgm reads at most 5 (T, C, Z, Y, X)"
                    )
    except InputError:
        raise
    except Exception as exc:  # tifffile raises TiffFileError, struct.error, ValueError …
        raise InputError(f"{path}: damaged TIFF ({_first_sentence(exc)})") from None
    finally:
        logger.removeHandler(records)
    # Only offsets past the end prove truncation; other oddities (a broken private tag,
    # say) are left to the readers, which often still read the pixels.
    for message in records.messages:
        # OME metadata that promises more planes than the file holds: tifffile would
        # fill the missing ones with zeros.
        missing = re.search(r"missing (\d+) frames?", message)
        if missing:
            raise InputError(
                f"{path}: its OME metadata describe {missing.group(1)} more plane(s) than the "
                "file contains; the metadata or the file is damaged"
            )
        match = re.search(r"invalid (\w+ )?offset (\d+)", message)
        if match and int(match.group(2)) >= size:
            raise InputError(
                f"{path}: truncated TIFF: an image directory or tag points to byte "
                f"{match.group(2)}, past the end of its {size} bytes; the copy or write "
                "was incomplete"
            )


def read_run_metadata(path: str | os.PathLike) -> dict:
    """The napari-mscgm run metadata embedded in an OME-TIFF or OME-Zarr written by this package."""
    path = Path(path)
    if path.is_dir():
        import zarr

        try:
            attrs = dict(zarr.open_group(str(path), mode="r").attrs)
        except Exception as exc:
            raise InputError(
                f"{path}: not a readable Zarr group ({_first_sentence(exc)})"
            ) from None
        if RUN_METADATA_KEY not in attrs:
            raise InputError(f"{path}: has no napari-mscgm run metadata")
        return dict(attrs[RUN_METADATA_KEY])
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
