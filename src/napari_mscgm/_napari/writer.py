"""npe2 writer: save an image layer as OME-TIFF with its pixel size and MSCGM run metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import RUN_METADATA_KEY, write_ome_tiff
from ..restoration.axes import layer_axes

__all__ = ["write_image"]


def write_image(path: str, data: Any, attributes: dict) -> list[str]:
    """Write one image layer as OME-TIFF.

    The physical pixel size comes from the layer's scale (in µm); the run metadata
    of an MSCGM result (``layer.metadata["napari-mscgm"]``) is embedded and can be
    read back with :func:`napari_mscgm.io.read_run_metadata`.

    Parameters
    ----------
    path : str
        Target file; ``.ome.tif`` is appended when it has no OME-TIFF suffix.
    data : array-like
        The layer data (numpy or dask; multiscale: the full-resolution level is saved).
    attributes : dict
        The layer attributes napari passes (``name``, ``scale``, ``metadata``, …).

    Returns
    -------
    list of str
        The written path.
    """
    if attributes.get("rgb"):
        raise ValueError("RGB layers are not supported by the MSCGM OME-TIFF writer")
    if attributes.get("multiscale") or isinstance(data, list | tuple):
        data = data[0]
    array = np.asarray(data)
    try:
        axes = layer_axes(array.ndim)  # the axes the widget gives layers
    except InputError:
        raise ValueError(
            f"cannot write a {array.ndim}D layer as OME-TIFF (2D to 5D only)"
        ) from None
    target = Path(path)
    if not target.name.lower().endswith((".ome.tif", ".ome.tiff")):
        target = target.with_name(target.name + ".ome.tif")
    scale = [float(s) for s in attributes.get("scale", [1.0] * array.ndim)]
    sizes = dict(zip(axes, scale, strict=True))
    pixel_size = (sizes.get("Z"), sizes["Y"], sizes["X"])
    run = (attributes.get("metadata") or {}).get(RUN_METADATA_KEY)
    write_ome_tiff(target, array, axes=axes, pixel_size_um=pixel_size, metadata=run)
    return [str(target)]
