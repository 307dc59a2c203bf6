"""OME-Zarr output (NGFF 0.4, Zarr format 2, readable by zarr 2.18 and 3), written chunk by chunk.

Results larger than memory stream to disk: :func:`create_ome_zarr` makes the empty
array, and the restoration fills it block by block through a :class:`ChunkWriter`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import OutputError
from .atomic import write_error
from .read import RUN_METADATA_KEY

__all__ = ["ZARR_CHUNK", "ChunkWriter", "create_ome_zarr"]

_NGFF_AXES = {
    "T": {"name": "t", "type": "time"},
    "C": {"name": "c", "type": "channel"},
    "Z": {"name": "z", "type": "space", "unit": "micrometer"},
    "Y": {"name": "y", "type": "space", "unit": "micrometer"},
    "X": {"name": "x", "type": "space", "unit": "micrometer"},
}
#: Largest Zarr chunk edge used when the data come as one block per plane.
ZARR_CHUNK = 1024


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
