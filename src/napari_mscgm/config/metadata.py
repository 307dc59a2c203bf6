"""The record a restoration leaves on its output: layer metadata, OME-TIFF and OME-Zarr.

:class:`RunMetadata` is built once by the restoration and extended through its
methods (which return updated copies); :meth:`RunMetadata.to_dict` is the JSON
document stored under the key ``napari-mscgm``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["NormalizationRecord", "RunMetadata", "TilingRecord"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TilingRecord(_Record):
    """How the planes were cut into tiles (input pixels)."""

    units: str = "input pixels"
    stride_y: int
    stride_x: int
    halo: int
    blend: str = "raised cosine across each overlap"


class NormalizationRecord(_Record):
    """The percentiles and the values they had per channel."""

    pmin: float
    pmax: float
    values: list[list[float]]


class RunMetadata(_Record):
    """Everything needed to repeat a restoration and to judge it.

    Optional fields are recorded only when set (the input's pixel size, a CLI
    input's path, what a napari layer shows, the consistency check's scores).
    """

    package: str = "napari-mscgm"
    version: str
    model: str
    model_sha256: str | None
    task: str
    scale: int
    steps: int
    seed: int
    eta: float
    samples: int
    tile_size: int | None
    overlap: int | None
    tiling: TilingRecord
    device: str
    precision: str
    normalization: NormalizationRecord
    axes: str
    input_shape: list[int]
    output_shape: list[int]
    input_pixel_size_um: list[float | None] | None = None
    output_pixel_size_um: list[float | None] | None = None
    input: str | None = None
    input_name: str | None = None
    content: Literal["std", "consistency"] | None = None
    kind: Literal["mean", "std", "consistency"] | None = None
    model_ref: str | None = None
    preview: bool | None = None
    preview_region: dict[str, Any] | None = None
    consistency: dict[str, Any] | None = None
    uncertainty: Literal["calibrated", "sample spread"] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready document (fields never set are left out)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def with_pixel_size(self, pixel_size_um: tuple[float | None, ...]) -> RunMetadata:
        """Record the input's ``(z, y, x)`` pixel size and the output's (Y, X divided by scale)."""
        z, y, x = pixel_size_um
        output = [z, None if y is None else y / self.scale, None if x is None else x / self.scale]
        return self.model_copy(
            update={"input_pixel_size_um": [z, y, x], "output_pixel_size_um": output}
        )

    def with_input(self, name: str | None, source: str | None = None) -> RunMetadata:
        """Record the input's name (and the file it was read from)."""
        update: dict[str, Any] = {"input_name": name}
        if source is not None:
            update["input"] = source
        return self.model_copy(update=update)

    def with_consistency(self, record: dict[str, Any]) -> RunMetadata:
        """Record the consistency check's scores (see :mod:`napari_mscgm.restoration.consistency`)."""
        return self.model_copy(update={"consistency": record})

    def for_std(self) -> RunMetadata:
        """The record of the std (uncertainty) file written beside the result."""
        return self.model_copy(update={"content": "std"})

    def for_consistency_map(self) -> RunMetadata:
        """The record of the consistency map written beside the result (on the input grid)."""
        return self.model_copy(update={"content": "consistency"})

    def for_layer(self, kind: str, *, model_ref: str, preview: bool) -> RunMetadata:
        """The record of a napari result layer: which map it shows and how it was asked for."""
        return self.model_copy(update={"kind": kind, "model_ref": model_ref, "preview": preview})

    def for_preview(self, region: dict[str, Any], output_shape: list[int]) -> RunMetadata:
        """A preview: the region of the input it restored, and its own shape."""
        return self.model_copy(update={"preview_region": region, "output_shape": output_shape})
