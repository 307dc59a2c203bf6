"""The "Restore (MSCGM)" dock widget.

The only module of the package (with ``_sample_data`` and ``_writer``) that imports
napari, Qt or magicgui. The restoration itself is :func:`napari_mscgm.restore`; this
module chooses its parameters, runs it in a napari ``thread_worker`` so the viewer
stays responsive, and turns the result into well-placed, well-labelled layers.

Threads: the napari worker runs a generator that starts ``restore`` in one more
plain thread and yields its ``progress(done, total)`` reports, because a generator
cannot yield from inside a callback. Cancel sets an event that the progress
callback checks after every forward pass (one tile on the CPU, up to four on a
GPU), so a run stops within one pass and nothing is published.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import queue
import re
import secrets
import threading
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    Slider,
    SpinBox,
)
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QEvent, QEventLoop, QSettings, QTimer
from qtpy.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from .device import available_devices
from .errors import MSCGMError
from .io import RUN_METADATA_KEY
from .model import list_models, load_model, model_path, read_model_config
from .pipeline import MeanStd, restore

if TYPE_CHECKING:
    import napari

    from .config import ModelConfig

__all__ = [
    "LOAD_FROM_FILE",
    "SETTINGS_ENV",
    "RestoreWidget",
    "layer_axes",
    "output_geometry",
]

log = logging.getLogger(__name__)

#: QSettings organisation and application: where the widget's choices persist.
ORGANISATION = "napari-mscgm"
APPLICATION = "restore-widget"
#: Path of an ``.ini`` file to use instead of the user's settings (tests, kiosks).
SETTINGS_ENV = "NAPARI_MSCGM_SETTINGS"
LOAD_FROM_FILE = "load from file…"
#: Preview restores at most this many input pixels per side around the view centre.
PREVIEW_MAX = 256
#: A layer pixel size this far (relative) from the model's input pixel size warns.
PIXEL_SIZE_TOLERANCE = 0.1
#: Tile edges offered (input pixels); 0 means no tiling.
TILE_CHOICES = [("whole plane", 0), ("64", 64), ("128", 128), ("256", 256), ("512", 512),
                ("1024", 1024), ("2048", 2048)]  # fmt: skip
_SEED_MAX = 2**31 - 1  # QSpinBox holds a C int
_AXES_BY_NDIM = {2: "YX", 3: "ZYX", 4: "TZYX", 5: "TCZYX"}


# --------------------------------------------------------------------- pure helpers
def layer_axes(ndim: int) -> str:
    """Axes letters that the widget gives a napari image layer of ``ndim`` dimensions.

    napari usually splits channels into separate layers, so a 4D layer is read
    as ``TZYX`` (each layer is normalised on its own, like one channel).
    """
    if ndim not in _AXES_BY_NDIM:
        raise MSCGMError(
            f"The layer has {ndim} dimensions; MSCGM restores 2D to 5D images. Add a layer "
            "with fewer axes first, e.g. viewer.add_image(layer.data[0]) in the napari console."
        )
    return _AXES_BY_NDIM[ndim]


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


def _friendly_error(exc: BaseException, tile_size: int | None) -> str:
    """An actionable one-line message for a failed run."""
    text = str(exc)
    if isinstance(exc, MSCGMError):
        return text
    oom_types = tuple(
        t
        for t in (getattr(__import__("torch").cuda, "OutOfMemoryError", None), MemoryError)
        if t is not None
    )
    if isinstance(exc, oom_types) or "out of memory" in text.lower():
        tile = f"{tile_size}" if tile_size else "whole plane"
        return (
            f"Out of memory (tile size {tile}): choose a smaller tile size (e.g. 128), "
            "fewer samples, or the CPU device, and run again."
        )
    return (
        f"Restoration failed unexpectedly ({type(exc).__name__}: {text}). "
        "Please report it with the napari console log."
    )


def _unwrap(obj: Any) -> Any:
    """The object behind one of the proxies that napari hands plugins (layers, values)."""
    return getattr(obj, "__wrapped__", obj)


def _traceback_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


def _settings() -> QSettings:
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def _device_choices() -> list[tuple[str, str]]:
    """``(label, value)`` for the device combo: auto (and what it picks), then each device."""
    import torch

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


def _preload() -> None:
    """Import what a run imports lazily, here in the main thread: a first import in
    the worker holds the interpreter lock long enough (0.1–0.3 s) to freeze napari.
    A first dask compute, for one, imports dask.distributed when it is installed."""
    import dask.array as da
    import dask.highlevelgraph  # noqa: F401
    import safetensors.torch  # noqa: F401

    from . import tiling  # noqa: F401

    da.ones(2, chunks=1).sum().compute(scheduler="sync")


def _is_lazy(data: Any) -> bool:
    return not isinstance(data, np.ndarray)


def _contrast(data: np.ndarray, low: float = 1.0, high: float = 99.8) -> tuple[float, float]:
    """Percentile contrast limits of a (numpy) result, never an empty range."""
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return (0.0, 1.0)
    step = max(1, finite.size // 1_000_000)  # a subsample is enough for display
    lo, hi = np.percentile(finite[::step], [low, high])
    if not hi > lo:
        hi = lo + 1.0
    return (float(lo), float(hi))


def _check_layer(layer: Any) -> None:
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


# --------------------------------------------------------------------- the job
class _Cancelled(Exception):
    """Raised inside ``restore``'s progress callback to stop a run."""


@dataclass
class _State:
    """What outlives a run: the cached model. Separate from the widget so that it can
    be released from ``destroyed`` after the Qt object is gone."""

    model_key: tuple[str, str] | None = None
    model: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    worker: Any = None
    #: Set when the widget goes away: a run still finishing releases the model itself.
    closed: bool = False

    def get_model(self, ref: str, device: str) -> Any:
        if self.model_key != (ref, device):
            if self.model is not None:
                self.release()
            self.model = load_model(ref, device=device)
            self.model_key = (ref, device)
        return self.model

    def release(self) -> None:
        """Drop the model and give its (GPU) memory back."""
        self.model = None
        self.model_key = None
        gc.collect()
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def _release_state(state: _State, *_: Any) -> None:
    state.cancel.set()
    if state.worker is not None:
        with contextlib.suppress(RuntimeError):
            state.worker.quit()
    state.release()


@dataclass
class _Job:
    """Everything a run needs, captured in the main thread."""

    layer_name: str
    data: Any
    axes: str
    model_ref: str
    device: str
    steps: int
    seed: int
    eta: float
    samples: int
    tile_size: int | None
    overlap: int
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    colormap: Any
    input_contrast: tuple[float, float]
    units: tuple[Any, ...] | None = None
    preview: bool = False
    #: Preview: the plane (leading indices) and the YX box of the input it shows.
    plane: tuple[int, ...] = ()
    offset_yx: tuple[int, int] = (0, 0)
    size_yx: tuple[int, int] | None = None

    @property
    def pixel_size_um(self) -> tuple[float | None, float | None, float | None]:
        """``(z, y, x)`` from the layer scale, which napari users set in µm."""
        z = self.scale[-3] if len(self.scale) >= 3 else None
        return (z, self.scale[-2], self.scale[-1])

    @property
    def planes(self) -> int:
        return int(np.prod(self.data.shape[:-2])) if self.data.ndim > 2 else 1


@dataclass
class _Outcome:
    job: _Job
    status: str  # "done" | "cancelled" | "error"
    result: Any = None
    metadata: dict | None = None
    contrast: tuple[float, float] | None = None
    std_contrast: tuple[float, float] | None = None
    error: str = ""


def _restore_kwargs(job: _Job) -> dict[str, Any]:
    return {
        "steps": job.steps,
        "seed": job.seed,
        "eta": job.eta,
        "samples": job.samples,
        "axes": job.axes,
        "tile_size": job.tile_size,
        "overlap": job.overlap,
        "pixel_size_um": job.pixel_size_um,
    }


def _compute(job: _Job, state: _State, progress: Callable[[int, int], None] | None) -> _Outcome:
    """Load the model (cached) and restore; runs off the main thread."""
    model = state.get_model(job.model_ref, job.device)
    if state.cancel.is_set():
        raise _Cancelled
    # One tile per forward pass on the CPU: the same speed there, and progress and
    # Cancel act per tile; GPUs batch a few tiles for throughput.
    batch_size = 1 if model.device.type == "cpu" else 4
    data = job.data
    if job.preview and not _is_lazy(data):
        import dask.array as da

        data = da.from_array(data, chunks=(1,) * (data.ndim - 2) + data.shape[-2:])
    result, metadata = restore(
        data,
        model,
        progress=progress,
        return_metadata=True,
        batch_size=batch_size,
        **_restore_kwargs(job),
    )
    if job.preview:
        # The preview is a window of the lazily built full restoration: only the
        # tiles under the box are computed, with the whole layer's normalisation and
        # the noise of the true plane and pixel positions, so it shows exactly what
        # Run gives there.
        f = model.scale
        (y0, x0), (h, w) = job.offset_yx, job.size_yx
        index = (*job.plane, slice(y0 * f, (y0 + h) * f), slice(x0 * f, (x0 + w) * f))
        region = result[index].compute(scheduler="sync")
        result = region.reshape((1,) * len(job.plane) + region.shape)
        metadata["output_shape"] = list(result.shape)
    metadata = {
        **metadata,
        "input_name": job.layer_name,
        "model_ref": job.model_ref,
        "preview": job.preview,
    }
    if job.preview:
        metadata["preview_region"] = {
            "plane": list(job.plane),
            "offset_yx": list(job.offset_yx),
            "size_yx": list(job.size_yx),
            "units": "input pixels",
        }
    mean, std = (result.mean, result.std) if isinstance(result, MeanStd) else (result, None)
    outcome = _Outcome(job, "done", result=(mean, std), metadata=metadata)
    # Contrast from the data where it is in memory; lazy results keep the input's.
    outcome.contrast = job.input_contrast if _is_lazy(mean) else _contrast(mean)
    if std is not None:
        outcome.std_contrast = (
            (0.0, max(job.input_contrast[1] - job.input_contrast[0], 1.0) / 4)
            if _is_lazy(std)
            else (0.0, max(_contrast(std)[1], 1e-6))
        )
    return outcome


@thread_worker(start_thread=False)
def _run_job(job: _Job, state: _State) -> Generator[tuple[int, int], None, _Outcome]:
    """napari worker: yields ``(done, total)`` per tile batch and returns an outcome."""
    messages: queue.Queue = queue.Queue()

    def progress(done: int, total: int) -> None:
        if state.cancel.is_set():
            raise _Cancelled
        messages.put(("progress", (done, total)))

    def target() -> None:
        try:
            # A lazy result is computed later, by napari, when a plane is displayed:
            # no progress (and no cancel) can apply to it then.
            # A preview is computed here, in full, even from a lazy layer.
            callback = None if _is_lazy(job.data) and not job.preview else progress
            messages.put(("outcome", _compute(job, state, callback)))
        except _Cancelled:
            messages.put(("outcome", _Outcome(job, "cancelled")))
        except BaseException as exc:
            # The traceback is logged as text: a log record that kept the exception would
            # keep its frames alive, and with them the tiles' tensors (GPU memory).
            log.error("napari-mscgm: restoration failed\n%s", _traceback_text(exc))
            messages.put(
                ("outcome", _Outcome(job, "error", error=_friendly_error(exc, job.tile_size)))
            )

    thread = threading.Thread(target=target, name="napari-mscgm-restore", daemon=True)
    thread.start()
    try:
        while True:
            kind, payload = messages.get()
            if kind == "progress":
                yield payload
            else:
                return payload
    finally:
        # On abort (generator closed), stop the computation within one tile.
        if thread.is_alive():
            state.cancel.set()
        thread.join()
        if state.closed:
            state.release()


# --------------------------------------------------------------------- the widget
class RestoreWidget(QWidget):
    """Restore the selected image layer with MSCGM (super-resolution and denoising).

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose layers are restored; napari passes it.

    Notes
    -----
    Scripts drive the widget through its controls (``layer``, ``steps``, ``seed``,
    ``eta``, ``samples``, ``tile_size``, ``overlap``, ``device``), :meth:`set_model`,
    :meth:`run`, :meth:`cancel` and :meth:`wait`.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._state = _State()
        self._job: _Job | None = None
        self._extra_models: list[str] = []
        self._previous_model: str | None = None
        self._loading_settings = True
        self._model_config: ModelConfig | None = None
        self._watched: Any = None  # the layer whose scale events we follow
        _preload()
        self._build()
        self._connect()
        self._load_settings()
        self._loading_settings = False
        self._update_model_card()
        self._watch_layer()
        # Release the model (and GPU memory) when Qt deletes the widget, even
        # when no close event comes (e.g. the viewer window closes).
        self.destroyed.connect(lambda *_, s=self._state: _release_state(s))

    # ------------------------------------------------------------- construction
    def _build(self) -> None:
        tip = {
            "layer": "The image layer to restore (2D, or a Z/T stack restored plane by plane).",
            "model": "The trained model. Pick one trained for your microscope and pixel size.",
            "steps": "Diffusion steps: more is slower and usually a little sharper; "
            "the model's default is a good start.",
            "seed": "The seed fixes the random noise: the same seed and settings give the "
            "identical result. Change it to see another plausible restoration.",
            "eta": "Randomness added at each diffusion step: 1 = the sampler the model was "
            "trained with; 0 = none (smoother; the seed then changes only fine detail).",
            "samples": "Restore this many times with different noise and average them; "
            "above 1 also adds a '_std' layer showing where the restorations disagree.",
            "tile": "Images are restored in tiles of this many input pixels to bound memory; "
            "'whole plane' uses no tiles. Lower it if you run out of memory.",
            "overlap": "Overlap between tiles (input pixels), blended to avoid seams.",
            "device": "Where the computation runs; 'auto' takes the GPU when there is one.",
        }
        self.layer = ComboBox(
            label="image", choices=self._image_layer_choices, tooltip=tip["layer"]
        )
        self.model = ComboBox(label="model", choices=self._model_choices(), tooltip=tip["model"])
        self.model_card = Label(value="")
        self.model_card.native.setWordWrap(True)
        self.pixel_warning = Label(value="")
        self.pixel_warning.native.setWordWrap(True)
        self.pixel_warning.native.setStyleSheet("color: #e0a030;")
        self.pixel_warning.visible = False
        self.steps = Slider(label="steps", min=1, max=200, value=20, tooltip=tip["steps"])
        self.seed = SpinBox(label="seed", min=0, max=_SEED_MAX, value=0, tooltip=tip["seed"])
        self.random_seed = PushButton(text="random", tooltip="Draw a new random seed")
        seed_row = Container(
            widgets=[self.seed, self.random_seed], layout="horizontal", labels=False, label="seed"
        )
        seed_row.margins = (0, 0, 0, 0)
        self.eta = FloatSpinBox(
            label="eta", min=0.0, max=2.0, step=0.1, value=1.0, tooltip=tip["eta"]
        )
        self.samples = SpinBox(label="samples", min=1, max=16, value=1, tooltip=tip["samples"])
        self.tile_size = ComboBox(
            label="tile size", choices=TILE_CHOICES, value=256, tooltip=tip["tile"]
        )
        self.overlap = SpinBox(
            label="overlap", min=0, max=512, step=8, value=32, tooltip=tip["overlap"]
        )
        self.device = ComboBox(label="device", choices=_device_choices(), tooltip=tip["device"])
        self.preview_button = PushButton(
            text="Preview", tooltip="Restore only what is in view (current plane), quickly"
        )
        self.run_button = PushButton(text="Run", tooltip="Restore the whole layer")
        buttons = Container(
            widgets=[self.preview_button, self.run_button], layout="horizontal", labels=False
        )
        buttons.margins = (0, 0, 0, 0)
        self.progress = ProgressBar(value=0, min=0, max=1)
        self.status = Label(value="Ready.")
        self.status.native.setWordWrap(True)
        # Labelled form rows, with full-width text (model card, warning, status) between.
        self.model_form = Container(widgets=[self.layer, self.model], labels=True)
        self.form = Container(
            widgets=[
                self.steps,
                seed_row,
                self.eta,
                self.samples,
                self.tile_size,
                self.overlap,
                self.device,
            ],
            labels=True,
        )
        layout = QVBoxLayout()
        layout.setContentsMargins(4, 4, 4, 4)
        for part in (self.model_form, self.model_card, self.pixel_warning, self.form, buttons,
                     self.progress, self.status):  # fmt: skip
            layout.addWidget(part.native)
        layout.addStretch(1)
        self.setLayout(layout)

    def _connect(self) -> None:
        self.layer.changed.connect(self._watch_layer)
        self.model.changed.connect(self._on_model_changed)
        # "activated" also fires when the chosen entry was already current: the
        # file dialog must open even when "load from file…" is the only entry.
        self.model.native.activated.connect(self._on_model_activated)
        self.random_seed.changed.connect(self.randomize_seed)
        self.run_button.changed.connect(self._on_run_clicked)
        self.preview_button.changed.connect(self._on_preview_clicked)
        for widget in (self.steps, self.seed, self.eta, self.samples, self.tile_size,
                       self.overlap, self.device):  # fmt: skip
            widget.changed.connect(self._save_settings)
        events = self.viewer.layers.events
        events.inserted.connect(self._refresh_layers)
        events.removed.connect(self._refresh_layers)
        events.reordered.connect(self._refresh_layers)
        self.viewer.layers.selection.events.active.connect(self._on_active_layer)

    # ------------------------------------------------------------- choices
    def _image_layer_choices(self, *_: Any) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _model_choices(self) -> list[tuple[str, str]]:
        bundled = [(f"{name} (bundled)", name) for name in list_models()]
        files = [(Path(p).name, p) for p in self._extra_models]
        return [*bundled, *files, (LOAD_FROM_FILE, LOAD_FROM_FILE)]

    def _refresh_layers(self, *_: Any) -> None:
        current = self.layer.value
        self.layer.reset_choices()
        if current is not None and current in self.layer.choices:
            self.layer.value = current
        self._watch_layer()

    def _watch_layer(self, layer: Any = None) -> None:
        """Re-check the pixel size when the chosen layer or its scale changes."""
        if self._watched is not None:
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                self._watched.events.scale.disconnect(self._update_pixel_warning)
        self._watched = self.layer.value
        if self._watched is not None:
            self._watched.events.scale.connect(self._update_pixel_warning)
        self._update_pixel_warning()

    def _on_active_layer(self, event: Any) -> None:
        # Follow the layer the user selects, unless it is one of our results.
        active = getattr(event, "value", None)
        if active is not None and active in self.layer.choices and not self._is_result(active):
            self.layer.value = active

    @staticmethod
    def _is_result(layer: Any) -> bool:
        return layer is not None and RUN_METADATA_KEY in getattr(layer, "metadata", {})

    # ------------------------------------------------------------- model
    @property
    def model_config(self) -> ModelConfig | None:
        """The selected model's configuration (read from its file header), if any."""
        return self._model_config

    def set_model(self, name_or_path: str | os.PathLike) -> None:
        """Select a bundled model by name or a ``.safetensors`` file by path."""
        ref = str(name_or_path)
        if ref not in list_models():
            ref = str(Path(ref).expanduser().resolve())
            if ref not in self._extra_models:
                self._extra_models.append(ref)
            self.model.choices = self._model_choices()
        self.model.value = ref

    def _on_model_activated(self, index: int) -> None:
        if self.model.native.itemText(index) == LOAD_FROM_FILE:
            self._choose_model_file()

    def _on_model_changed(self, value: str) -> None:
        if value == LOAD_FROM_FILE:
            self._update_model_card()
            return
        self._previous_model = value
        self._update_model_card(reset_defaults=not self._loading_settings)
        self._update_pixel_warning()
        self._save_settings()

    def _choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load MSCGM weights", str(Path.home()), "MSCGM weights (*.safetensors)"
        )
        if path:
            self.set_model(path)
        elif self._previous_model is not None:
            self.model.value = self._previous_model
        else:
            self._update_model_card()

    def _update_model_card(self, reset_defaults: bool = False) -> None:
        ref = self.model.value
        self._model_config = None
        if ref in (None, LOAD_FROM_FILE):
            if not list_models():
                self.model_card.value = (
                    "No bundled model is installed: choose 'load from file…' and pick a "
                    ".safetensors weights file."
                )
            else:
                self.model_card.value = "Choose a model."
            self.run_button.enabled = self.preview_button.enabled = False
            return
        path = model_path(ref) if ref in list_models() else Path(ref)
        try:
            config = read_model_config(path)
        except MSCGMError as exc:
            self.model_card.value = f"Cannot read this model: {exc}"
            self.run_button.enabled = self.preview_button.enabled = False
            return
        self._model_config = config
        self.model_card.value = model_summary(config)
        trained_on = f"Trained on: {config.training.data}" if config.training.data else ""
        self.model_card.tooltip = (
            "\n".join(t for t in (config.description, trained_on) if t) or None
        )
        if not self.is_running:
            self.run_button.enabled = self.preview_button.enabled = True
        if reset_defaults:
            self.steps.value = min(max(config.bbdp.default_steps, 1), 200)
            self.eta.value = config.bbdp.default_eta

    def _update_pixel_warning(self, *_: Any) -> None:
        layer, config = self.layer.value, self._model_config
        expected = config.physics.input_pixel_size_um if config is not None else None
        if layer is None or expected is None:
            self.pixel_warning.visible = False
            return
        size = float(layer.scale[-1])
        if abs(size - expected) <= PIXEL_SIZE_TOLERANCE * expected:
            self.pixel_warning.visible = False
            return
        hint = (
            " (napari's default when the pixel size is unknown: set the layer's scale in µm)"
            if size == 1.0
            else ""
        )
        self.pixel_warning.value = (
            f"⚠ '{layer.name}' has {size:.3g} µm pixels{hint}, but this model expects "
            f"{expected:.3g} µm. Results may be unreliable: use a model trained for your "
            "pixel size, or resample the image."
        )
        self.pixel_warning.visible = True

    # ------------------------------------------------------------- settings
    _PERSISTED = ("steps", "seed", "eta", "samples", "tile_size", "overlap", "device")

    def _save_settings(self, *_: Any) -> None:
        if self._loading_settings:
            return
        settings = _settings()
        for name in self._PERSISTED:
            settings.setValue(name, getattr(self, name).value)
        if self.model.value not in (None, LOAD_FROM_FILE):
            settings.setValue("model", self.model.value)
        settings.setValue("model_files", list(self._extra_models))
        settings.sync()

    def _load_settings(self) -> None:
        settings = _settings()
        files = settings.value("model_files", [])
        files = [files] if isinstance(files, str) else list(files or [])
        self._extra_models = [f for f in files if Path(f).is_file()]
        self.model.choices = self._model_choices()
        model = settings.value("model", None)
        choices = [c for c in self.model.choices]
        if model in choices:
            self.model.value = model
        self._previous_model = self.model.value if self.model.value != LOAD_FROM_FILE else None
        self._update_model_card(reset_defaults=True)
        for name in self._PERSISTED:
            widget = getattr(self, name)
            stored = settings.value(name, None)
            if stored is None:
                continue
            with contextlib.suppress(TypeError, ValueError):
                if isinstance(widget, ComboBox):  # INI files store text: match it
                    matches = [c for c in widget.choices if str(c) == str(stored)]
                    if matches:
                        widget.value = matches[0]
                else:
                    widget.value = type(widget.value)(stored)

    # ------------------------------------------------------------- actions
    def randomize_seed(self, *_: Any) -> int:
        """Draw a new random seed into the seed box and return it."""
        self.seed.value = secrets.randbelow(_SEED_MAX)
        return self.seed.value

    @property
    def is_running(self) -> bool:
        return self._job is not None

    def _on_run_clicked(self, *_: Any) -> None:
        if self.is_running:
            self.cancel()
        else:
            self.run()

    def _on_preview_clicked(self, *_: Any) -> None:
        self.run(preview=True)

    def cancel(self) -> None:
        """Stop the current run within one tile; nothing is added to the viewer."""
        if self.is_running:
            self._state.cancel.set()
            self.status.value = "Cancelling (finishing the current tile)…"
            self.run_button.enabled = False

    def run(self, preview: bool = False) -> Any:
        """Restore the selected layer (or, with ``preview``, only what is in view).

        Returns
        -------
        napari.qt.threading.GeneratorWorker or None
            The started worker; None when the run could not start (a notification says why).
        """
        if self.is_running:
            show_warning("A restoration is already running; cancel it first.")
            return None
        try:
            job = self._make_job(preview)
        except MSCGMError as exc:
            show_error(str(exc))
            self.status.value = str(exc)
            return None
        self._job = job
        self._state.cancel.clear()
        worker = _run_job(job, self._state)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self._state.worker = worker
        self.progress.max = 0 if preview else 1  # a preview shows a busy bar
        self.progress.value = 0
        self.run_button.text = "Cancel"
        self.preview_button.enabled = False
        what = "Previewing the view of" if preview else "Restoring"
        self.status.value = f"{what} '{job.layer_name}': loading the model…"
        worker.start()
        return worker

    def wait(self, timeout: float | None = None) -> bool:
        """Process Qt events until the current run finishes (for scripts).

        Returns
        -------
        bool
            True when no run is in progress any more; False on timeout.
        """
        if not self.is_running:
            return True
        loop = QEventLoop()
        worker = self._state.worker
        worker.finished.connect(loop.quit)
        if timeout is not None:
            QTimer.singleShot(int(timeout * 1000), loop.quit)
        if self.is_running:
            loop.exec()
        return not self.is_running

    def _make_job(self, preview: bool) -> _Job:
        layer = self.layer.value
        if layer is None:
            raise MSCGMError("Open or select an image layer to restore first.")
        ref = self.model.value
        if ref in (None, LOAD_FROM_FILE) or self._model_config is None:
            raise MSCGMError("Choose a model first ('load from file…' to pick a weights file).")
        _check_layer(layer)
        data = layer.data[0] if layer.multiscale else layer.data
        axes = layer_axes(data.ndim)
        tile = int(self.tile_size.value) or None
        common = {
            "layer_name": layer.name,
            "model_ref": ref,
            "device": self.device.value,
            "steps": int(self.steps.value),
            "seed": int(self.seed.value),
            "eta": float(self.eta.value),
            "tile_size": tile,
            "overlap": int(self.overlap.value),
            "colormap": layer.colormap,
            "input_contrast": tuple(float(v) for v in layer.contrast_limits),
            "units": tuple(getattr(layer, "units", ())) or None,
        }
        scale = tuple(float(s) for s in layer.scale)
        translate = tuple(float(t) for t in layer.translate)
        if not preview:
            return _Job(
                data=data, axes=axes, samples=int(self.samples.value), scale=scale,
                translate=translate, **common,
            )  # fmt: skip
        plane, (y0, y1), (x0, x1) = self._visible_region(layer, data.shape)
        if tile is None and max(data.shape[-2:]) > 2 * PREVIEW_MAX:
            # "Whole plane" would make the preview compute the whole plane: tile it.
            # Tiling changes the result only by float rounding near tile borders.
            common["tile_size"] = PREVIEW_MAX
            common["overlap"] = min(common["overlap"], PREVIEW_MAX // 4)
        # The result keeps singleton leading axes, placed on the plane it shows.
        lead_translate = tuple(
            t + p * s for t, p, s in zip(translate[:-2], plane, scale[:-2], strict=True)
        )
        return _Job(
            data=data, axes=axes, samples=1, scale=scale,
            translate=(*lead_translate, *translate[-2:]), preview=True, plane=plane,
            offset_yx=(y0, x0), size_yx=(y1 - y0, x1 - x0), **common,
        )  # fmt: skip

    def _visible_region(
        self, layer: Any, shape: tuple[int, ...]
    ) -> tuple[tuple[int, ...], tuple[int, int], tuple[int, int]]:
        """Current plane and the in-view YX box (at most ``PREVIEW_MAX`` per side)."""
        height, width = shape[-2:]
        # The plane shown now: the viewer's current point, in the layer's data indices.
        point = np.asarray(self.viewer.dims.point, dtype=float)[-len(shape) :]
        data_point = (point - np.asarray(layer.translate)) / np.asarray(layer.scale)
        plane = tuple(
            int(np.clip(round(v), 0, n - 1))
            for v, n in zip(data_point[:-2], shape[:-2], strict=True)
        )
        scene = getattr(self.viewer, "scene", None)
        camera = scene.camera if scene is not None else self.viewer.camera
        box = [(0, height), (0, width)]
        if self.viewer.dims.ndisplay == 2:
            canvas = np.asarray(self.viewer.canvas.size, dtype=float)  # (h, w) canvas pixels
            centre = np.asarray(camera.center[-2:], dtype=float)
            half = canvas / max(float(camera.zoom), 1e-9) / 2
            sy, sx = (float(v) for v in layer.scale[-2:])
            ty, tx = (float(v) for v in layer.translate[-2:])
            lo = ((centre[0] - half[0] - ty) / sy + 0.5, (centre[1] - half[1] - tx) / sx + 0.5)
            hi = ((centre[0] + half[0] - ty) / sy + 0.5, (centre[1] + half[1] - tx) / sx + 0.5)
            for i, n in enumerate((height, width)):
                a, b = int(np.clip(math.floor(lo[i]), 0, n)), int(np.clip(math.ceil(hi[i]), 0, n))
                box[i] = (a, b) if b - a >= 8 else (0, n)  # nothing sensible in view: all
        for i in range(2):
            a, b = box[i]
            if b - a > PREVIEW_MAX:  # centre-crop: a preview must stay quick
                mid = (a + b) // 2
                a = mid - PREVIEW_MAX // 2
                box[i] = (a, a + PREVIEW_MAX)
        return plane, box[0], box[1]

    # ------------------------------------------------------------- worker signals
    def _on_progress(self, report: tuple[int, int]) -> None:
        done, total = report
        job = self._job
        if job is not None and job.preview:  # tiles under the view only: no known total
            where = f"plane {tuple(p + 1 for p in job.plane)}, " if job.plane else ""
            self.status.value = f"Previewing '{job.layer_name}': {where}tile {done}"
            return
        self.progress.max = max(total, 1)
        self.progress.value = done
        if job is None:
            return
        planes = job.planes
        if planes > 1 and total % planes == 0:
            per_plane = total // planes
            plane = min((done - 1) // per_plane + 1, planes)
            tile = (done - 1) % per_plane + 1
            where = f"plane {plane}/{planes}, tile {tile}/{per_plane}"
        else:
            where = f"tile {done}/{total}"
        self.status.value = f"Restoring '{job.layer_name}': {where}"

    def _on_returned(self, outcome: _Outcome) -> None:
        if outcome.status == "cancelled":
            self.status.value = "Cancelled: nothing was added."
            show_info("MSCGM restoration cancelled; no layer was added.")
        elif outcome.status == "error":
            self.status.value = f"Failed: {outcome.error}"
            show_error(outcome.error)
        else:
            undo: list[Callable[[], Any]] = []
            try:
                layer = self._publish(outcome, undo)
            except Exception as exc:
                # napari draws a lazy result here, which computes its first plane: an input
                # problem found only now (NaN pixels in a lazy layer) must leave no layer.
                for step in reversed(undo):
                    with contextlib.suppress(Exception):
                        step()
                message = _friendly_error(exc, outcome.job.tile_size)
                log.error("napari-mscgm: showing the result failed\n%s", _traceback_text(exc))
                self.status.value = f"Failed: {message}"
                show_error(message)
                return
            lazy = " (lazy: planes are restored when displayed)" if _is_lazy(layer.data) else ""
            self.status.value = f"Done: '{layer.name}'{lazy}, seed {outcome.metadata['seed']}."

    def _on_finished(self) -> None:
        self._job = None
        self._state.worker = None
        self.run_button.text = "Run"
        ready = self._model_config is not None
        self.run_button.enabled = self.preview_button.enabled = ready
        done = self.status.value.startswith("Done")
        if self.progress.max == 0:  # the busy bar of a preview
            self.progress.max = 1
            self.progress.value = int(done)
        elif self.progress.value < self.progress.max and done:
            self.progress.value = self.progress.max

    def _publish(self, outcome: _Outcome, undo: list[Callable[[], Any]]) -> Any:
        """Add the result layers, or update the ones a previous run made.

        ``undo`` receives, for each change made, the step that reverts it.
        """
        job = outcome.job
        mean, std = outcome.result
        factor = int(outcome.metadata["scale"])
        scale, translate = output_geometry(job.scale, job.translate, factor, job.offset_yx)
        base = f"{job.layer_name}_mscgm" + ("_preview" if job.preview else "")
        extra = {"units": job.units} if job.units else {}
        mean_layer = self._put_layer(
            undo,
            base,
            mean,
            scale=scale,
            translate=translate,
            contrast_limits=outcome.contrast,
            colormap=job.colormap,
            metadata={RUN_METADATA_KEY: {**outcome.metadata, "kind": "mean"}},
            **extra,
        )
        std_name = f"{base}_std"
        if std is not None:
            self._put_layer(
                undo,
                std_name,
                std,
                scale=scale,
                translate=translate,
                contrast_limits=outcome.std_contrast,
                colormap="magma",
                metadata={RUN_METADATA_KEY: {**outcome.metadata, "kind": "std"}},
                **extra,
            )
        elif std_name in self.viewer.layers and self._is_result(self.viewer.layers[std_name]):
            # A std map of an earlier run would now describe another result.
            self.viewer.layers.remove(std_name)
        return mean_layer

    def _put_layer(self, undo: list[Callable[[], Any]], name: str, data: Any, **props: Any) -> Any:
        layers = self.viewer.layers
        existing = layers[name] if name in layers else None
        if existing is not None and self._is_result(existing) and existing.ndim == data.ndim:
            # Same name, our own earlier result: update it in place.
            # Keep the real objects (and a copy of the metadata dict, which napari
            # updates in place) to put back if drawing the new data fails.
            before = {}
            for key in ("data", *props):
                value = _unwrap(getattr(existing, key))
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
        if existing is not None and self._is_result(existing):
            index, old = layers.index(existing), _unwrap(existing)
            layers.remove(existing)
            undo.append(lambda: layers.insert(index, old))
        layer = self.viewer.add_image(data, name=name, **props)
        undo.append(lambda: layers.remove(layer) if layer in layers else None)
        return layer

    # ------------------------------------------------------------- teardown
    def cleanup(self) -> None:
        """Cancel any run and release the model and its GPU memory."""
        self._state.closed = True
        _release_state(self._state)

    def closeEvent(self, event: Any) -> None:
        self.cleanup()
        super().closeEvent(event)

    def event(self, event: Any) -> bool:
        # napari removes a dock widget by taking it out of its parent: release then.
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self.cleanup()
        return super().event(event)
