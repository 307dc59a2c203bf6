"""Reading microscopy files and writing OME-TIFF and OME-Zarr results.

Reading goes through the BioImage API (bioio; aicsimageio when bioio cannot
open a file and aicsimageio is installed), which gives a lazy 5D TCZYX dask
array and physical pixel sizes; ``.zarr`` inputs go through bioio-ome-zarr.
Writing is atomic: data go to a temporary file (or directory, for Zarr) beside
the target, which is renamed only when complete, so a failed or interrupted run
never leaves a partial result under the final name. OME-Zarr is written with
zarr directly (NGFF 0.4, Zarr format 2, readable by zarr 2.18 and 3), chunk by
chunk, so results larger than memory stream to disk.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, OutputError

__all__ = [
    "ChunkWriter",
    "ImageData",
    "check_output_path",
    "create_ome_zarr",
    "read_image",
    "read_run_metadata",
    "replace_path",
    "temporary_path",
    "write_error",
    "write_ome_tiff",
    "write_ome_tiff_from_zarr",
    "write_ome_zarr",
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
        return ImageData(data, (sizes.Z, sizes.Y, sizes.X), _stem(path), channels)
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
            return ImageData(data, (sizes.Z, sizes.Y, sizes.X), _stem(path), channels)
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


def temporary_path(path: Path) -> Path:
    """The sibling ``.<name>.<pid>.part`` that ``path`` is written to before it is renamed.

    Same directory, so the final rename is atomic. The pid keeps two processes
    writing the same output apart. Temporaries of ``path`` left by a killed run
    (SIGKILL, power loss) are removed here, so they never pile up; a temporary is
    stale when its process no longer runs on this machine, or is this process.
    """
    _remove_stale_temporaries(path)
    return path.with_name(f".{path.name}.{os.getpid()}.part")


def _remove_stale_temporaries(path: Path) -> None:
    prefix = f".{path.name}."
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return  # a missing or unreadable directory is reported by the write itself
    for entry in entries:
        pid = entry.name[len(prefix) : -len(".part")]
        if not (entry.name.startswith(prefix) and entry.name.endswith(".part") and pid.isdigit()):
            continue
        if int(pid) != os.getpid() and _process_exists(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


def _process_exists(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows: keep its files
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists but belongs to another user
        return True
    return True


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[Path]:
    """Give the temporary to write ``path`` to; rename it onto ``path`` when the block ends.

    On any error, or an interruption, the temporary is removed and the old ``path``
    stays as it was; an ``OSError`` becomes the :class:`OutputError` of :func:`write_error`.
    """
    tmp = temporary_path(path)
    try:
        yield tmp
        replace_path(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise write_error(path, exc) from None
        raise


def check_output_path(path: Path) -> None:
    """Refuse, before any work, an output that cannot be written or would destroy data.

    The parent directory must exist (it is never created: a typo in the path
    should not silently make directories) and be writable; an existing directory
    under the output name is replaced only when it is a Zarr store (an earlier
    result), never for a TIFF output.
    """
    parent = path.parent
    if not parent.exists():
        raise OutputError(
            f"{parent}: output directory does not exist; create it first "
            "(napari-mscgm does not create directories)"
        )
    if not parent.is_dir():
        raise OutputError(f"{parent}: is not a directory")
    if path.is_dir() and not path.is_symlink():
        is_zarr = any((path / name).exists() for name in (".zgroup", ".zarray", "zarr.json"))
        if not (is_zarr and path.name.lower().endswith(".zarr")):
            raise OutputError(
                f"{path}: exists and is a directory that is not a Zarr result; "
                "move it away or choose another output name"
            )
    if not os.access(parent, os.W_OK):
        raise OutputError(
            f"{parent}: output directory is not writable; choose a directory you can write to"
        )


def write_error(path: Path, exc: OSError) -> OutputError:
    """The :class:`OutputError` for a failed write of ``path``: what happened, what to do."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = {
        errno.ENOSPC: "free some space or write elsewhere",
        errno.EDQUOT: "free some space or write elsewhere",
        errno.EACCES: "choose a directory you can write to",
        errno.EPERM: "choose a directory you can write to",
        errno.EROFS: "choose a directory you can write to",
    }.get(exc.errno or 0, "check the output location")
    match = re.fullmatch(r"\.(.+)\.\d+\.part", path.name)
    if match:  # name the output the user asked for, not its temporary
        path = path.with_name(match.group(1))
    return OutputError(f"{path}: cannot write ({reason}); {hint}")


class ChunkWriter:
    """A Zarr array whose chunk writes fail with :class:`OutputError` naming ``target``.

    Given to ``dask.array.store``, so that a full disk or a read-only directory
    during the write is reported as an output problem, while read errors of the
    input keep their own type.
    """

    def __init__(self, array: Any, target: Path) -> None:
        self.array, self.target = array, target
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __setitem__(self, index: Any, value: Any) -> None:
        try:
            self.array[index] = value
        except OutputError:
            raise
        except OSError as exc:
            raise write_error(self.target, exc) from None

    def __getitem__(self, index: Any) -> Any:
        return self.array[index]


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
    with _atomic_file(path) as tmp:
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


# ---------------------------------------------------------------- OME-Zarr
_NGFF_AXES = {
    "T": {"name": "t", "type": "time"},
    "C": {"name": "c", "type": "channel"},
    "Z": {"name": "z", "type": "space", "unit": "micrometer"},
    "Y": {"name": "y", "type": "space", "unit": "micrometer"},
    "X": {"name": "x", "type": "space", "unit": "micrometer"},
}
#: Largest Zarr chunk edge used when the data come as one block per plane.
ZARR_CHUNK = 1024
#: OME-TIFFs larger than this are written band by band instead of in one piece.
TIFF_STREAM_BYTES = 64 * 2**20


def replace_path(tmp: Path, path: Path) -> None:
    """Move a finished temporary file or directory onto ``path``, replacing what was there.

    A directory cannot be renamed over another, so an earlier Zarr result is removed
    first: for that moment neither exists, but never a partial one.
    """
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(tmp, path)  # replaces a file (or symlink) atomically


def _zarr_chunks(shape: tuple[int, ...], chunks: Any) -> tuple[int, ...]:
    """Regular Zarr chunks that never straddle two blocks of ``chunks`` (safe parallel writes).

    Blocks of a restoration are regular except the last one, which may be longer,
    so the first block size works; a single block is cut into ``ZARR_CHUNK`` pieces.
    """
    if chunks is None:
        return tuple(min(n, ZARR_CHUNK) if i >= len(shape) - 2 else 1 for i, n in enumerate(shape))
    out = []
    for n, c in zip(shape, chunks, strict=True):
        c = tuple(c) if not isinstance(c, int) else (c,)
        if len(c) == 1 and c[0] < n:  # a block size (not a tuple of blocks)
            out.append(c[0])
        else:
            out.append(min(n, ZARR_CHUNK) if len(c) == 1 else c[0])
    return tuple(max(1, v) for v in out)


def create_ome_zarr(
    path: str | os.PathLike,
    *,
    shape: tuple[int, ...],
    chunks: Any = None,
    axes: str = "TCZYX",
    pixel_size_um: tuple[float | None, float | None, float | None] = (None, None, None),
    metadata: dict | None = None,
    channel_names: list[str] | None = None,
    dtype: Any = "float32",
) -> Any:
    """Create an empty single-scale OME-Zarr (NGFF 0.4) image and return its array to fill.

    ``axes`` is a subset of ``TCZYX`` in that order (NGFF's rule). Physical sizes
    go into the ``scale`` coordinate transformation, the run metadata under the
    group attribute ``"napari-mscgm"``. ``chunks`` may be dask chunks; Zarr chunks
    are then chosen so that no Zarr chunk is written by two blocks.
    """
    import zarr

    path = Path(path)
    if axes != "".join(a for a in "TCZYX" if a in axes) or len(axes) != len(shape):
        raise OutputError(f"OME-Zarr axes must follow TCZYX order and match the data, got {axes!r}")
    sizes = dict(zip("ZYX", pixel_size_um, strict=True))
    scale = [float(sizes[a]) if a in "ZYX" and sizes[a] is not None else 1.0 for a in axes]
    try:
        group = zarr.open_group(str(path), mode="w", zarr_format=2)
        kwargs = {
            "shape": tuple(shape),
            "chunks": _zarr_chunks(tuple(shape), chunks),
            "dtype": dtype,
            "fill_value": 0,
        }
        if hasattr(group, "create_array"):  # zarr 3
            array = group.create_array(
                "0", chunk_key_encoding={"name": "v2", "separator": "/"}, **kwargs
            )
        else:  # zarr 2.18
            array = group.create_dataset("0", dimension_separator="/", **kwargs)
        attrs: dict[str, Any] = {
            "multiscales": [
                {
                    "version": "0.4",
                    "name": (metadata or {}).get("input_name", path.name),
                    "axes": [_NGFF_AXES[a] for a in axes],
                    "datasets": [
                        {
                            "path": "0",
                            "coordinateTransformations": [{"type": "scale", "scale": scale}],
                        }
                    ],
                }
            ]
        }
        if "C" in axes:
            names = list(channel_names or [])
            n_channels = shape[axes.index("C")]
            names += [f"Channel:{i}" for i in range(len(names), n_channels)]
            attrs["omero"] = {
                "version": "0.4",
                "channels": [{"label": n, "active": True} for n in names[:n_channels]],
            }
        if metadata is not None:
            attrs[RUN_METADATA_KEY] = json.loads(json.dumps(metadata, default=str))
        group.attrs.update(attrs)
    except OSError as exc:
        raise write_error(path, exc) from exc
    return array


def write_ome_zarr(
    path: str | os.PathLike,
    data: Any,
    *,
    axes: str = "TCZYX",
    pixel_size_um: tuple[float | None, float | None, float | None] = (None, None, None),
    metadata: dict | None = None,
    channel_names: list[str] | None = None,
) -> Path:
    """Write a numpy or dask array as OME-Zarr atomically, block by block for dask."""
    import dask.array as da

    path = Path(path)
    check_output_path(path)
    tmp = temporary_path(path)
    try:
        array = create_ome_zarr(
            tmp,
            shape=data.shape,
            chunks=getattr(data, "chunks", None) if isinstance(data, da.Array) else None,
            axes=axes,
            pixel_size_um=pixel_size_um,
            metadata=metadata,
            channel_names=channel_names,
            dtype=data.dtype,
        )
        target = ChunkWriter(array, path)
        if isinstance(data, da.Array):
            da.store(data, target, lock=False)
        else:
            target[...] = np.asarray(data)
        replace_path(tmp, path)
    except OutputError:
        raise
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
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
    flat = source  # index planes through an unravelled multi-index

    def tiles():
        for p in range(planes):
            index = np.unravel_index(p, shape[:-2]) if planes > 1 or shape[:-2] else ()
            for y0 in range(0, height, tile):
                band = np.asarray(flat[(*index, slice(y0, y0 + tile), slice(None))], np.float32)
                for x0 in range(0, width, tile):
                    piece = band[:, x0 : x0 + tile]
                    if piece.shape != (tile, tile):  # tifffile wants whole tiles
                        piece = np.pad(
                            piece, ((0, tile - piece.shape[0]), (0, tile - piece.shape[1]))
                        )
                    yield piece

    ome = _ome_tiff_metadata(axes, pixel_size_um, metadata, channel_names)
    with _atomic_file(path) as tmp:
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
