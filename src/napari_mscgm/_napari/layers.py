"""Turning a run's outcome into layers: placed over the input, labelled, and undoable.

A result is ``<image>_mscgm`` (``_preview`` for a preview) and, with several samples,
``<image>_mscgm_std``; a layer of the same name from an earlier run is updated in
place. Every change is recorded with the step that reverts it, so that a failure
while napari first draws a lazy result leaves the viewer as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import MSCGMError
from ..io.read import RUN_METADATA_KEY
from .helpers import output_geometry, unwrap
from .worker import Outcome

__all__ = ["check_layer", "is_result", "publish"]

Undo = list[Callable[[], Any]]


def check_layer(layer: Any) -> None:
    """Refuse, before a run starts, a layer that MSCGM cannot restore, saying what to do.

    Checks what is known without reading pixels: the layer type and RGB. napari
    itself refuses complex images; pixel types and values (NaN, Inf) are checked by
    the restoration, whose messages the notifications show.
    """
    from napari.layers import Image

    if not isinstance(layer, Image):
        kind = type(layer).__name__
        raise MSCGMError(
            f"'{layer.name}' is a {kind} layer; MSCGM restores image layers. "
            "Choose an image layer in the 'image' box."
        )
    if getattr(layer, "rgb", False):
        raise MSCGMError(
            f"'{layer.name}' is an RGB image; MSCGM restores single-channel fluorescence. "
            "Split it into channels first (right-click the layer > Split RGB)."
        )


def is_result(layer: Any) -> bool:
    """Whether a layer is a result of this plugin (it carries the run record)."""
    return layer is not None and RUN_METADATA_KEY in getattr(layer, "metadata", {})


def publish(viewer: Any, outcome: Outcome, undo: Undo) -> Any:
    """Add the result layers, or update the ones a previous run made; returns the mean layer."""
    job, record = outcome.job, outcome.metadata
    mean, std = outcome.result
    scale, translate = output_geometry(job.scale, job.translate, record.scale, job.offset_yx)
    base = f"{job.layer_name}_mscgm" + ("_preview" if job.preview else "")
    extra = {"units": job.units} if job.units else {}

    def metadata(kind: str) -> dict:
        layer_record = record.for_layer(kind, model_ref=job.model_ref, preview=job.preview)
        return {RUN_METADATA_KEY: layer_record.to_dict()}

    mean_layer = _put_layer(
        viewer, undo, base, mean, scale=scale, translate=translate,
        contrast_limits=outcome.contrast, colormap=job.colormap, metadata=metadata("mean"),
        **extra,
    )  # fmt: skip
    _put_companion(
        viewer, undo, f"{base}_std", std, scale=scale, translate=translate,
        contrast_limits=outcome.std_contrast, colormap="magma", metadata=metadata("std"),
        **extra,
    )  # fmt: skip
    # The consistency map lies on the input's grid (a preview's: on its box).
    input_scale, input_translate = output_geometry(job.scale, job.translate, 1, job.offset_yx)
    _put_companion(
        viewer, undo, f"{base}_consistency", outcome.consistency_map, scale=input_scale,
        translate=input_translate, contrast_limits=CONSISTENCY_LIMITS, colormap="bwr",
        metadata=metadata("consistency"), **extra,
    )  # fmt: skip
    return mean_layer


#: Display range of the noise-normalised residual: ±5 noise standard deviations.
CONSISTENCY_LIMITS = (-5.0, 5.0)


def _put_companion(viewer: Any, undo: Undo, name: str, data: Any, **props: Any) -> None:
    """A map that goes with the result (std, consistency): shown, or an old one removed."""
    layers = viewer.layers
    if data is not None:
        _put_layer(viewer, undo, name, data, **props)
    elif name in layers and is_result(layers[name]):
        # A map of an earlier run would now describe another result.
        index, old = layers.index(layers[name]), unwrap(layers[name])
        layers.remove(name)
        undo.append(lambda: layers.insert(index, old))


def _put_layer(viewer: Any, undo: Undo, name: str, data: Any, **props: Any) -> Any:
    layers = viewer.layers
    existing = layers[name] if name in layers else None
    if existing is not None and is_result(existing) and existing.ndim == data.ndim:
        return _update_layer(existing, undo, data, props)
    if existing is not None and is_result(existing):
        index, old = layers.index(existing), unwrap(existing)
        layers.remove(existing)
        undo.append(lambda: layers.insert(index, old))
    layer = viewer.add_image(data, name=name, **props)
    undo.append(lambda: layers.remove(layer) if layer in layers else None)
    return layer


def _update_layer(existing: Any, undo: Undo, data: Any, props: dict) -> Any:
    """Same name, our own earlier result: update it in place."""
    # Keep the real objects (and a copy of the metadata dict, which napari updates in
    # place) to put back if drawing the new data fails.
    before = {}
    for key in ("data", *props):
        value = unwrap(getattr(existing, key))
        before[key] = dict(value) if isinstance(value, dict) else value

    def revert() -> None:
        for key, value in before.items():
            setattr(existing, key, value)

    undo.append(revert)
    existing.data = data
    existing.scale = props["scale"]
    existing.translate = props["translate"]
    existing.metadata = props["metadata"]
    existing.contrast_limits = props["contrast_limits"]
    if "units" in props:
        existing.units = props["units"]
    existing.refresh()
    return existing
