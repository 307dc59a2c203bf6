"""The "Restore (MSCGM)" dock widget.

The restoration itself is :func:`napari_mscgm.restore`; this widget chooses its
options (:class:`~napari_mscgm.RestoreOptions`), runs it in a napari
``thread_worker`` (:mod:`.worker`) so the viewer stays responsive, and turns the
result into well-placed, well-labelled layers (:mod:`.layers`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    Slider,
    SpinBox,
)
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QEvent
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ..config import RestoreOptions
from ..errors import MSCGMError
from ..restoration.axes import layer_axes
from .helpers import (
    PREVIEW_MAX,
    consistency_status,
    consistency_warning,
    device_choices,
    friendly_error,
    is_lazy,
    progress_status,
    traceback_text,
    visible_region,
)
from .layers import check_layer, is_result, publish
from .model_selection import LOAD_FROM_FILE, ModelSelection
from .settings import SETTINGS_ENV, WidgetSettings
from .worker import Job, ModelCache, Outcome, Status, preload, run_job, wait_for

if TYPE_CHECKING:
    import napari

    from ..config import ModelConfig

__all__ = ["LOAD_FROM_FILE", "SETTINGS_ENV", "RestoreWidget"]

log = logging.getLogger(__name__)

#: Tile edges offered (input pixels); 0 means no tiling.
TILE_CHOICES = [("whole plane", 0), ("64", 64), ("128", 128), ("256", 256), ("512", 512),
                ("1024", 1024), ("2048", 2048)]  # fmt: skip
_SEED_MAX = 2**31 - 1  # QSpinBox holds a C int
_TOOLTIPS = {
    "layer": "The image layer to restore (2D, or a Z/T stack restored plane by plane).",
    "model": "The trained model. Pick one trained for your microscope and pixel size.",
    "steps": "Diffusion steps for the coarse image. Keep the model's default: for the bundled "
    "models 1 step scored best on held-out data, and more steps are slower and slightly "
    "worse (steps table on each model card), not sharper.",
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
    "consistency": "Every result is degraded back to the input's resolution and compared with "
    "what was measured; this adds the map of where they differ (in noise standard deviations: "
    "blue or red beyond ±3 means the result contradicts the data there).",
}


class RestoreWidget(ModelSelection, QWidget):
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

    _PERSISTED = (
        "steps", "seed", "eta", "samples", "tile_size", "overlap", "device", "consistency_map",
    )  # fmt: skip

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._state = ModelCache()
        self._job: Job | None = None
        self._extra_models: list[str] = []
        self._previous_model: str | None = None
        self._loading_settings = True
        self._model_config: ModelConfig | None = None
        self._watched: Any = None  # the layer whose scale events we follow
        preload()
        self._build()
        self._connect()
        self._load_settings()
        self._loading_settings = False
        self._update_model_card()
        self._watch_models()
        self._watch_layer()
        # Release the model (and GPU memory) when Qt deletes the widget, even
        # when no close event comes (e.g. the viewer window closes).
        self.destroyed.connect(self._state.shut_down)

    # ------------------------------------------------------------- construction
    def _build(self) -> None:
        tip = _TOOLTIPS
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
        self.device = ComboBox(label="device", choices=device_choices(), tooltip=tip["device"])
        self.consistency_map = CheckBox(
            label="consistency map", value=True, tooltip=tip["consistency"]
        )
        self.preview_button = PushButton(
            text="Preview", tooltip="Restore only what is in view (current plane), quickly"
        )
        self.run_button = PushButton(text="Run", tooltip="Restore the whole layer")
        self.progress = ProgressBar(value=0, min=0, max=1)
        self.status = Label(value="Ready.")
        self.status.native.setWordWrap(True)
        self._lay_out()

    def _lay_out(self) -> None:
        """Labelled form rows, with full-width text (model card, warning, status) between."""
        seed_row = Container(
            widgets=[self.seed, self.random_seed], layout="horizontal", labels=False, label="seed"
        )
        buttons = Container(
            widgets=[self.preview_button, self.run_button], layout="horizontal", labels=False
        )
        for row in (seed_row, buttons):
            row.margins = (0, 0, 0, 0)
        self.model_form = Container(widgets=[self.layer, self.model], labels=True)
        rows = [
            self.steps,
            seed_row,
            self.eta,
            self.samples,
            self.tile_size,
            self.overlap,
            self.device,
            self.consistency_map,
        ]
        self.form = Container(widgets=rows, labels=True)
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
        for widget in self._controls().values():
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
        chosen = self._suggest_model(self._watched)
        if chosen is not None:
            self.status.value = f"Model '{chosen}' chosen: it is made for '{self._watched.name}'."
        self._update_pixel_warning()

    def _on_active_layer(self, event: Any) -> None:
        # Follow the layer the user selects, unless it is one of our results.
        active = getattr(event, "value", None)
        if active is not None and active in self.layer.choices and not is_result(active):
            self.layer.value = active

    # ------------------------------------------------------------- settings
    def _controls(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._PERSISTED}

    def _save_settings(self, *_: Any) -> None:
        if self._loading_settings:
            return
        model = self.model.value if self.model.value not in (None, LOAD_FROM_FILE) else None
        WidgetSettings().save(self._controls(), model, self._extra_models)

    def _load_settings(self) -> None:
        settings = WidgetSettings()
        self._extra_models = settings.model_files()
        self.model.choices = self._model_choices()
        model = settings.model()
        if model in list(self.model.choices):
            self.model.value = model
        self._previous_model = self.model.value if self.model.value != LOAD_FROM_FILE else None
        self._update_model_card(reset_defaults=True)
        settings.load(self._controls())

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
            self.status.value = f"Failed: {exc}"
            return None
        self._job = job
        self._state.cancel.clear()
        worker = run_job(job, self._state)
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
        return wait_for(self._state.worker, lambda: self.is_running, timeout)

    def _make_job(self, preview: bool) -> Job:
        layer = self.layer.value
        if layer is None:
            raise MSCGMError("Open or select an image layer to restore first.")
        ref = self.model.value
        if ref in (None, LOAD_FROM_FILE) or self._model_config is None:
            raise MSCGMError("Choose a model first ('load from file…' to pick a weights file).")
        check_layer(layer)
        data = layer.data[0] if layer.multiscale else layer.data
        scale = tuple(float(s) for s in layer.scale)
        translate = tuple(float(t) for t in layer.translate)
        tile, overlap = int(self.tile_size.value) or None, int(self.overlap.value)
        plane, box = (), ((0, 0), (0, 0))
        if preview:
            plane, *box = self._visible_region(layer, data.shape)
            if tile is None and max(data.shape[-2:]) > 2 * PREVIEW_MAX:
                # "Whole plane" would make the preview compute the whole plane: tile it.
                # Tiling changes the result only by float rounding near tile borders.
                tile, overlap = PREVIEW_MAX, min(overlap, PREVIEW_MAX // 4)
            # The result keeps singleton leading axes, placed on the plane it shows.
            lead = tuple(
                t + p * s for t, p, s in zip(translate[:-2], plane, scale[:-2], strict=True)
            )
            translate = (*lead, *translate[-2:])
        options = RestoreOptions(
            steps=int(self.steps.value), seed=int(self.seed.value), eta=float(self.eta.value),
            samples=1 if preview else int(self.samples.value), axes=layer_axes(data.ndim),
            tile_size=tile, overlap=overlap,
            # The layer scale, which napari users set in µm, is the pixel size.
            pixel_size_um=(scale[-3] if len(scale) >= 3 else None, scale[-2], scale[-1]),
        )  # fmt: skip
        (y0, y1), (x0, x1) = box
        return Job(
            layer_name=layer.name, data=data, model_ref=ref, device=self.device.value,
            options=options, scale=scale, translate=translate, colormap=layer.colormap,
            input_contrast=tuple(float(v) for v in layer.contrast_limits),
            units=tuple(getattr(layer, "units", ())) or None, preview=preview, plane=plane,
            offset_yx=(y0, x0), size_yx=(y1 - y0, x1 - x0) if preview else None,
            consistency_map=bool(self.consistency_map.value),
        )  # fmt: skip

    def _visible_region(self, layer: Any, shape: tuple[int, ...]) -> tuple:
        """Current plane and the in-view YX box (at most ``PREVIEW_MAX`` per side)."""
        scene = getattr(self.viewer, "scene", None)
        camera = scene.camera if scene is not None else self.viewer.camera
        two_d = self.viewer.dims.ndisplay == 2
        return visible_region(
            shape, point=self.viewer.dims.point, scale=layer.scale, translate=layer.translate,
            camera_center=camera.center if two_d else None, zoom=float(camera.zoom),
            canvas_size=self.viewer.canvas.size if two_d else None,
        )  # fmt: skip

    # ------------------------------------------------------------- worker signals
    def _on_progress(self, report: tuple[int, int]) -> None:
        done, total = report
        job = self._job
        if job is None or not job.preview:
            self.progress.max = max(total, 1)
            self.progress.value = done
        if job is not None:
            plane = job.plane if job.preview else None
            self.status.value = progress_status(job.layer_name, job.planes, done, total, plane)

    def _on_returned(self, outcome: Outcome) -> None:
        if outcome.status is Status.CANCELLED:
            self.status.value = "Cancelled: nothing was added."
            show_info("MSCGM restoration cancelled; no layer was added.")
        elif outcome.status is Status.ERROR:
            self.status.value = f"Failed: {outcome.error}"
            show_error(outcome.error)
        else:
            undo: list[Callable[[], Any]] = []
            try:
                layer = publish(self.viewer, outcome, undo)
            except Exception as exc:
                # napari draws a lazy result here, which computes its first plane: an input
                # problem found only now (NaN pixels in a lazy layer) must leave no layer.
                for step in reversed(undo):
                    with contextlib.suppress(Exception):
                        step()
                message = friendly_error(exc, outcome.job.options.tile_size)
                log.error("napari-mscgm: showing the result failed\n%s", traceback_text(exc))
                self.status.value = f"Failed: {message}"
                show_error(message)
                return
            lazy = " (lazy: planes are restored when displayed)" if is_lazy(layer.data) else ""
            record = outcome.metadata.consistency or {}
            self.status.value = (
                f"Done: '{layer.name}'{lazy}, seed {outcome.metadata.seed}. "
                + consistency_status(record)
            )
            if record.get("verdict") == "inconsistent":
                show_warning(consistency_warning(outcome.job.layer_name, record))

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

    # ------------------------------------------------------------- teardown
    def cleanup(self) -> None:
        """Cancel any run and release the model and its GPU memory."""
        self._state.closed = True
        self._state.shut_down()

    def closeEvent(self, event: Any) -> None:
        self.cleanup()
        super().closeEvent(event)

    def event(self, event: Any) -> bool:
        # napari removes a dock widget by taking it out of its parent: release then.
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self.cleanup()
        return super().event(event)
