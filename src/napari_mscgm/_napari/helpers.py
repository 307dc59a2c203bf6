"""Pure helpers of the plugin: geometry, texts and numbers, with no Qt or napari import.

They are unit-tested without a display (``tests/test_napari_helpers.py``).
"""

from __future__ import annotations

import contextlib
import math
import re
import traceback
from typing import Any

import numpy as np

from ..config import ModelConfig
from ..errors import MSCGMError

__all__ = [
    "PREVIEW_MAX",
    "SAMPLE_KEY",
    "consistency_status",
    "consistency_warning",
    "contrast_limits",
    "device_choices",
    "friendly_error",
    "is_lazy",
    "model_summary",
    "output_geometry",
    "pixel_size_warning",
    "progress_status",
    "recommended_model",
    "traceback_text",
    "unwrap",
    "visible_region",
]

#: Preview restores at most this many input pixels per side around the view centre.
PREVIEW_MAX = 256
#: Layer metadata of the bundled samples (see :mod:`.sample_data`).
SAMPLE_KEY = "napari-mscgm-sample"


def output_geometry(
    scale: tuple[float, ...] | np.ndarray,
    translate: tuple[float, ...] | np.ndarray,
    factor: int,
    offset_yx: tuple[int, int] = (0, 0),
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Scale and translate of a result so that its pixel centres overlay the input.

    napari puts the centre of pixel ``i`` at ``translate + i * scale``. Input pixel
    ``i`` spans ``[i - 1/2, i + 1/2]``; the restored grid splits it into ``factor``
    pixels of size ``scale / factor`` (the resampling is pixel-centre aligned, like
    ``align_corners=False``), so its first centre lies at
    ``translate - scale / 2 + scale / (2 * factor)``.

    Parameters
    ----------
    scale, translate : sequence of float
        The input layer's (data-to-world) scale and translate, any number of axes.
    factor : int
        The model's scale factor (Y and X only).
    offset_yx : tuple of int
        Position of a cropped region (preview) in input pixels.

    Returns
    -------
    scale, translate : tuple of float
    """
    scale = np.asarray(scale, dtype=float).copy()
    translate = np.asarray(translate, dtype=float).copy()
    translate[-2:] = translate[-2:] + np.asarray(offset_yx, dtype=float) * scale[-2:]
    translate[-2:] = translate[-2:] - scale[-2:] * (factor - 1) / (2 * factor)
    scale[-2:] = scale[-2:] / factor
    return tuple(scale.tolist()), tuple(translate.tolist())


def model_summary(config: ModelConfig) -> str:
    """One line a biologist can read: what the model does and for which data.

    It starts with the model's own description up to its first ``:``, ``;`` or
    full stop, without parentheses ("2x super-resolution + denoising of widefield
    fluorescence beads"), or, without one, with the task and modality; then the
    physics it was trained for. The full description is the card's tooltip.
    """
    phys = config.physics
    head = re.split(r"[:;]|\.\s", config.description.strip(), maxsplit=1)[0]
    head = re.sub(r"\s*\([^()]*\)", "", head).strip().rstrip(".")  # details: the tooltip
    if not 10 <= len(head) <= 100:  # missing, or not a summary: say it from the config
        task = f"super-resolution ×{config.scale}" if config.scale > 1 else "denoising"
        head = f"{task} of {phys.modality}"
    parts = []
    if phys.input_pixel_size_um and phys.target_pixel_size_um:
        parts.append(f"{phys.input_pixel_size_um:.3g} → {phys.target_pixel_size_um:.3g} µm pixels")
    if phys.input_na and phys.target_na:
        parts.append(f"NA {phys.input_na:g} → {phys.target_na:g}")
    if phys.emission_wavelength_um:
        parts.append(f"{phys.emission_wavelength_um * 1000:.0f} nm emission")
    line = head + ("; " + ", ".join(parts) if parts else "") + "."
    if not any(config.training.iterations.values()):
        line += " No training is recorded in this file: results are not meaningful."
    return line


def pixel_size_warning(layer_name: str, size_um: float, config: ModelConfig) -> str | None:
    """The warning shown when a layer's pixel size does not match the model's, else None."""
    from ..restoration.guard import pixel_size_mismatch

    expected = pixel_size_mismatch(size_um, config)
    if expected is None:
        return None
    hint = (
        " (napari's default when the pixel size is unknown: set the layer's scale in µm)"
        if size_um == 1.0
        else ""
    )
    return (
        f"⚠ '{layer_name}' has {size_um:.3g} µm pixels{hint}, but this model expects "
        f"{expected:.3g} µm. Results may be unreliable: use a model trained for your "
        "pixel size, or resample the image."
    )


def friendly_error(exc: BaseException, tile_size: int | None) -> str:
    """An actionable one-line message for a failed run."""
    from ..restoration.batching import is_oom

    text = str(exc)
    if isinstance(exc, MSCGMError):
        return text
    if is_oom(exc):
        tile = f"{tile_size}" if tile_size else "whole plane"
        return (
            f"Out of memory (tile size {tile}): choose a smaller tile size (e.g. 128), "
            "fewer samples, or the CPU device, and run again."
        )
    return (
        f"Restoration failed unexpectedly ({type(exc).__name__}: {text}). "
        "Please report it with the napari console log."
    )


def unwrap(obj: Any) -> Any:
    """The object behind one of the proxies that napari hands plugins (layers, values)."""
    return getattr(obj, "__wrapped__", obj)


def traceback_text(exc: BaseException) -> str:
    """The formatted traceback, as text (a log record keeping the exception keeps its frames)."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


def device_choices() -> list[tuple[str, str]]:
    """``(label, value)`` for the device combo: auto (and what it picks), then each device."""
    import torch

    from ..device import available_devices

    devices = available_devices()
    choices = [(f"auto ({devices[0]})", "auto")]
    for dev in devices:
        label = dev
        if dev.startswith("cuda"):
            with contextlib.suppress(Exception):  # a name is a nicety, never a failure
                props = torch.cuda.get_device_properties(int(dev.split(":")[1]))
                label = f"{dev} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
        choices.append((label, dev))
    return choices


def is_lazy(data: Any) -> bool:
    return not isinstance(data, np.ndarray)


def contrast_limits(data: np.ndarray, low: float = 1.0, high: float = 99.8) -> tuple[float, float]:
    """Percentile contrast limits of a (numpy) result, never an empty range."""
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return (0.0, 1.0)
    step = max(1, finite.size // 1_000_000)  # a subsample is enough for display
    lo, hi = np.percentile(finite[::step], [low, high])
    if not hi > lo:
        hi = lo + 1.0
    return (float(lo), float(hi))


def visible_region(
    shape: tuple[int, ...],
    *,
    point: Any,
    scale: Any,
    translate: Any,
    camera_center: Any = None,
    zoom: float = 1.0,
    canvas_size: Any = None,
    max_size: int = PREVIEW_MAX,
) -> tuple[tuple[int, ...], tuple[int, int], tuple[int, int]]:
    """The plane shown and the in-view YX box of a layer (at most ``max_size`` per side).

    Parameters
    ----------
    shape : tuple of int
        The layer's data shape.
    point : sequence of float
        The viewer's current world point (its last ``len(shape)`` axes are the layer's).
    scale, translate : sequence of float
        The layer's data-to-world transform.
    camera_center, zoom, canvas_size
        The 2D camera (world centre, canvas pixels per world unit) and the canvas
        ``(h, w)`` in pixels; None (3D display) takes the whole plane.
    max_size : int
        Larger boxes are centre-cropped to this.

    Returns
    -------
    plane : tuple of int
        Indices of the leading (non-YX) axes.
    (y0, y1), (x0, x1) : tuple of int
        The box in input pixels.
    """
    height, width = shape[-2:]
    scale, translate = np.asarray(scale, dtype=float), np.asarray(translate, dtype=float)
    data_point = (np.asarray(point, dtype=float)[-len(shape) :] - translate) / scale
    plane = tuple(
        int(np.clip(round(v), 0, n - 1)) for v, n in zip(data_point[:-2], shape[:-2], strict=True)
    )
    box = [(0, height), (0, width)]
    if camera_center is not None and canvas_size is not None:
        centre = np.asarray(camera_center, dtype=float)[-2:]
        half = np.asarray(canvas_size, dtype=float) / max(float(zoom), 1e-9) / 2
        for i, n in enumerate((height, width)):
            lo = (centre[i] - half[i] - translate[-2 + i]) / scale[-2 + i] + 0.5
            hi = (centre[i] + half[i] - translate[-2 + i]) / scale[-2 + i] + 0.5
            a, b = int(np.clip(math.floor(lo), 0, n)), int(np.clip(math.ceil(hi), 0, n))
            box[i] = (a, b) if b - a >= 8 else (0, n)  # nothing sensible in view: all
    for i in range(2):
        a, b = box[i]
        if b - a > max_size:  # centre-crop: a preview must stay quick
            mid = (a + b) // 2
            a = mid - max_size // 2
            box[i] = (a, a + max_size)
    return plane, box[0], box[1]


def progress_status(
    layer_name: str, planes: int, done: int, total: int, preview_plane: tuple[int, ...] | None
) -> str:
    """The status line while a run restores forward pass ``done`` of ``total``.

    ``preview_plane`` is the plane a preview shows (None for a run); a preview knows no
    total, since only the tiles under the view are computed.
    """
    if preview_plane is not None:
        where = f"plane {tuple(p + 1 for p in preview_plane)}, " if preview_plane else ""
        return f"Previewing '{layer_name}': {where}tile {done}"
    if planes > 1 and total % planes == 0:
        per_plane = total // planes
        plane = min((done - 1) // per_plane + 1, planes)
        tile = (done - 1) % per_plane + 1
        where = f"plane {plane}/{planes}, tile {tile}/{per_plane}"
    else:
        where = f"tile {done}/{total}"
    return f"Restoring '{layer_name}': {where}"


def consistency_status(record: dict) -> str:
    """The status line's words on the consistency check."""
    verdict = record.get("verdict")
    if verdict == "consistent":
        return f"Consistent with the input (RSP {record['rsp']:.2f})."
    if verdict == "inconsistent":
        share = 100 * record["inconsistent_fraction"]
        return f"INCONSISTENT with the input: {share:.0f} % of the area differs beyond noise."
    return "Consistency not checked (lazy result)." if verdict else ""


def consistency_warning(layer_name: str, record: dict) -> str:
    """The notification when a result contradicts its input, with what to do about it."""
    share = 100 * record["inconsistent_fraction"]
    return (
        f"The restoration of '{layer_name}' is inconsistent with the measured image: degraded "
        f"back to the input's resolution, {share:.0f} % of it differs beyond noise (RSP "
        f"{record['rsp']:.2f}). Do not trust its detail: try another model, check the layer's "
        "pixel size (its scale, in µm), or train a model for your microscope."
    )


def recommended_model(
    pixel_size_um: float | None, metadata: dict, models: dict[str, ModelConfig]
) -> str | None:
    """The model for a layer: the one its sample is made for, else the best physics match.

    ``models`` maps names to configs, in order of preference (the first wins a tie). The
    match is the model whose input pixel size is closest to the layer's (in ratio);
    None when no model is within the pixel-size tolerance.
    """
    from ..restoration.guard import PIXEL_SIZE_TOLERANCE

    made_for = (metadata or {}).get(SAMPLE_KEY, {}).get("model")
    if made_for in models:
        return made_for
    if not pixel_size_um or pixel_size_um <= 0:
        return None
    best, distance = None, math.log1p(PIXEL_SIZE_TOLERANCE)
    for name, config in models.items():
        expected = config.physics.input_pixel_size_um
        if expected:
            gap = abs(math.log(pixel_size_um / expected))
            if gap < distance - 1e-12:
                best, distance = name, gap
    return best
