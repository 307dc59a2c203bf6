"""The "Train (MSCGM)" dock widget.

The training is :func:`napari_mscgm.training.microscope.fine_tune_for_microscope`:
pairs are simulated for the user's optics and camera and the closest bundled generalist
is fine-tuned on them. This widget collects the microscope (checked against physics by
:class:`~napari_mscgm.config.microscope.MicroscopeSpec`), runs the fine-tune in a
napari ``thread_worker`` with progress, ETA and the validation scores as they come,
and Stop ends it early with the model trained so far (and a checkpoint). The new model
then appears in the Restore widget's list.
"""

from __future__ import annotations

import csv
import itertools
import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.qt.threading import thread_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from pydantic import ValidationError
from qtpy.QtGui import QColor, QPainter, QPen, QPixmap
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..config._base import first_error
from ..config.microscope import IMMERSION_INDEX, OBJECTIVES, FineTuneConfig, MicroscopeSpec
from ..errors import MSCGMError
from .helpers import device_choices, friendly_error, traceback_text
from .model_selection import models_changed
from .worker import Status, relay, wait_for

if TYPE_CHECKING:
    import napari

    from ..training.microscope import FineTuneResult

__all__ = ["TrainJob", "TrainOutcome", "TrainWidget", "run_training"]

log = logging.getLogger(__name__)

CUSTOM = "custom"
_DEFAULTS = FineTuneConfig()
_TOOLTIPS = {
    "layer": "An image from this microscope: its pixel size (layer scale, µm) fills in "
    "the pixel size, and with 'estimated from the image' its first plane gives the camera. "
    "Training needs no clean images: pairs are simulated for these optics.",
    "objective": "A common objective fills in NA and immersion; 'custom' leaves them to you.",
    "pixel_size": "The camera pixel at the sample, in µm (camera pixel / magnification).",
    "na": "The objective's numerical aperture.",
    "immersion": "The medium the objective is made for (its NA cannot exceed its index).",
    "wavelength": "Emission wavelength, in µm.",
    "task": "Denoise: the same pixels and optics out. 2× super-resolution: pixels half the "
    "size and the target NA out.",
    "target_na": "The NA the 2× result should look like; 0 = the largest the immersion "
    "allows, up to twice the input's.",
    "camera": "Simulate the generalists' sCMOS (varied), a camera fitted to the image's "
    "noise (raw, unprocessed counts only), or the values you enter.",
    "gain": "Conversion gain, ADU per photo-electron (from the camera's data sheet).",
    "offset": "The camera's baseline, in ADU.",
    "read_noise": "Read noise, electrons rms.",
    "data": "Simulated pairs for these optics need no clean images. Your own pairs: a "
    "low-quality and a high-quality image of the same field (the target scale times the "
    "input's size), as two layers or as a folder with low/ and high/ of matching file names.",
    "low_layer": "The low-quality (input) image of your pair.",
    "high_layer": "The high-quality (target) image of the same field, registered to it.",
    "folder": "A folder with low/ and high/ holding pairs of the same file names.",
    "name": "The model's name in your model folder; it then appears in the Restore widget.",
    "overwrite": "Replace a model of this name (otherwise an existing one is an error).",
    "pairs": "Simulated training pairs.",
    "bridge_iterations": "Training steps of the coarse (diffusion) stage.",
    "generator_iterations": "Training steps of the detail generators.",
    "device": "Where training runs; a GPU is much faster.",
}


@dataclass
class TrainJob:
    """A fine-tune, captured in the main thread."""

    spec: MicroscopeSpec
    name: str
    #: Where the model goes (resolved, and checked not to exist, in the main thread).
    path: Path
    fine_tune: FineTuneConfig
    overwrite: bool
    device: str
    #: None: simulated pairs; a folder path, or ``(name, low, high)`` pairs read from layers.
    pairs: str | list | None = None


@dataclass
class TrainOutcome:
    job: TrainJob
    status: Status
    result: FineTuneResult | None = None
    error: str = ""


def _last_validation(log_path: Path) -> dict[str, str] | None:
    """The newest row of the training log (the loop writes it before the callback)."""
    try:
        with log_path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return None
    return rows[-1] if rows else None


@thread_worker(start_thread=False)
def run_training(job: TrainJob, stop: threading.Event) -> Generator[tuple, None, TrainOutcome]:
    """napari worker: yields ``("step", stage, done, total)`` before each training step and
    ``("validation", row)`` after each validation, and returns an outcome."""
    from ..training.loop import StopTraining
    from ..training.microscope import fine_tune_for_microscope, fine_tune_on_pairs

    path = job.path

    def work(report: Callable[[Any], None]) -> TrainOutcome:
        try:

            def step(stage: str, done: int, total: int) -> None:
                if stop.is_set():
                    raise StopTraining
                report(("step", stage, done, total))

            def validated(stage: str, done: int, total: int, loss: float) -> None:
                report(("validation", _last_validation(path.with_suffix(".csv"))))

            common = dict(fine_tune=job.fine_tune, overwrite=job.overwrite, device=job.device,
                          callback=validated, step_callback=step,
                          command="napari-mscgm Train widget")  # fmt: skip
            if job.pairs is None:
                result = fine_tune_for_microscope(job.spec, str(path), **common)
            else:
                result = fine_tune_on_pairs(job.pairs, job.spec, str(path), **common)
            return TrainOutcome(job, Status.DONE, result=result)
        except BaseException as exc:
            log.error("napari-mscgm: training failed\n%s", traceback_text(exc))
            return TrainOutcome(job, Status.ERROR, error=training_error(exc))

    return (yield from relay(work, name="napari-mscgm-train", on_abort=stop.set))


def curve_points(values: list[float], width: int, height: int, margin: int = 4) -> list[tuple]:
    """``values`` as pixel points across ``width`` × ``height`` (min at the bottom)."""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 2 * margin) / max(len(values) - 1, 1)
    return [
        (margin + i * step, height - margin - (v - low) / span * (height - 2 * margin))
        for i, v in enumerate(values)
    ]


class TrainingPlot(QLabel):
    """The live plot: validation PSNR (blue) and training loss (orange) per validation,
    each scaled to its own range (the labels give the ranges)."""

    SIZE = (280, 110)

    def __init__(self) -> None:
        super().__init__()
        self.setFixedSize(*self.SIZE)
        self.show_history([])

    def show_history(self, rows: list[dict[str, str]]) -> None:
        width, height = self.SIZE
        pixmap = QPixmap(width, height)
        pixmap.fill(QColor(30, 30, 30))
        painter = QPainter(pixmap)
        try:
            series = (("val_psnr", QColor(90, 170, 255), "val PSNR", "dB"),
                      ("loss", QColor(255, 160, 60), "loss", ""))  # fmt: skip
            for row, (key, color, label, unit) in enumerate(series):
                values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
                painter.setPen(QPen(color, 2))
                if len(values) > 1:
                    points = curve_points(values, width, height - 18)
                    for (x0, y0), (x1, y1) in itertools.pairwise(points):
                        painter.drawLine(int(x0), int(y0) + 18, int(x1), int(y1) + 18)
                text = label if not values else f"{label} {values[0]:.3g}→{values[-1]:.3g} {unit}"
                painter.drawText(6 + row * (width // 2), 13, text.strip())
        finally:
            painter.end()
        self.setPixmap(pixmap)


def training_error(exc: BaseException) -> str:
    """A one-line message for a failed training."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"Not enough disk space to save the model ({exc.strerror}): free some space and "
            "train again. No model was written; your images and models are untouched."
        )
    if isinstance(exc, MSCGMError):
        return str(exc)
    return friendly_error(exc, None).replace("Restoration failed", "Training failed")


def first_plane(layer: Any) -> np.ndarray:
    """The first 2D plane of an image layer (its finest level when multiscale)."""
    data = layer.data[0] if layer.multiscale else layer.data
    return np.asarray(data[(0,) * (data.ndim - 2)])


def eta_text(seconds: float) -> str:
    """``"about 3 min left"`` style."""
    if seconds < 90:
        return f"about {max(seconds, 1):.0f} s left"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min left"
    return f"about {seconds / 3600:.1f} h left"


class TrainWidget(QWidget):
    """Fine-tune a bundled generalist for your microscope, on simulated pairs.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer; its image layers can give the pixel size and the camera.

    Notes
    -----
    Scripts set the controls (``pixel_size``, ``na``, ``immersion``, ``wavelength``,
    ``task``, ``target_na``, ``camera``, ``model_name``, ``pairs``,
    ``bridge_iterations``, ``generator_iterations``, ``device``) and call
    :meth:`train`, :meth:`stop` and :meth:`wait`.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._stop = threading.Event()
        self._worker: Any = None
        self._job: TrainJob | None = None
        self._started: float | None = None
        self._first = 0
        self._activity: Any = None  # the entry in napari's activity dock
        self._step_offsets: dict[str, int] = {}
        self._total = 1
        self.history: list[dict[str, str]] = []
        self.last_outcome: TrainOutcome | None = None
        self._build()
        self._from_layer()
        self.destroyed.connect(self._stop.set)

    # ------------------------------------------------------------- construction
    def _build(self) -> None:
        tip = _TOOLTIPS
        self.layer = ComboBox(label="from image", choices=self._layer_choices, tooltip=tip["layer"])
        self.objective = ComboBox(
            label="objective", choices=[CUSTOM, *OBJECTIVES], value=CUSTOM, tooltip=tip["objective"]
        )
        self.pixel_size = FloatSpinBox(label="pixel size (µm)", value=0.325, min=0.005, max=20,
                                       step=0.005, tooltip=tip["pixel_size"])  # fmt: skip
        self.pixel_size.native.setDecimals(4)
        self.na = FloatSpinBox(
            label="NA", value=0.75, min=0.05, max=1.7, step=0.05, tooltip=tip["na"]
        )
        self.immersion = ComboBox(label="immersion", choices=list(IMMERSION_INDEX), value="air",
                                  tooltip=tip["immersion"])  # fmt: skip
        self.wavelength = FloatSpinBox(label="emission (µm)", value=0.52, min=0.3, max=1.2,
                                       step=0.01, tooltip=tip["wavelength"])  # fmt: skip
        self.task = ComboBox(label="task", choices=[("denoise", "denoise"),
                             ("2× super-resolution", "sr2x")], tooltip=tip["task"])  # fmt: skip
        self.target_na = FloatSpinBox(label="target NA (0 = auto)", value=0.0, min=0.0, max=1.7,
                                      step=0.05, tooltip=tip["target_na"])  # fmt: skip
        self.camera = ComboBox(label="camera", choices=[("default sCMOS (varied)", "default"),
                               ("estimated from the image", "auto"), ("entered", "given")],
                               tooltip=tip["camera"])  # fmt: skip
        self.gain = FloatSpinBox(label="gain (ADU/e⁻)", value=2.0, min=0.01, max=1000,
                                 step=0.1, tooltip=tip["gain"])  # fmt: skip
        self.offset = FloatSpinBox(label="offset (ADU)", value=100.0, min=0, max=60000,
                                   step=1, tooltip=tip["offset"])  # fmt: skip
        self.read_noise = FloatSpinBox(label="read noise (e⁻)", value=1.5, min=0, max=1000,
                                       step=0.1, tooltip=tip["read_noise"])  # fmt: skip
        self.data = ComboBox(label="training data", choices=[
            ("simulated for these optics", "simulated"), ("my pairs: two layers", "layers"),
            ("my pairs: a folder (low/, high/)", "folder")], tooltip=tip["data"])  # fmt: skip
        self.low_layer = ComboBox(label="low (input)", choices=self._image_choices,
                                  tooltip=tip["low_layer"])  # fmt: skip
        self.high_layer = ComboBox(label="high (target)", choices=self._image_choices,
                                   tooltip=tip["high_layer"])  # fmt: skip
        self.folder = FileEdit(label="pairs folder", mode="d", tooltip=tip["folder"])
        self.model_name = LineEdit(label="model name", value="my-microscope", tooltip=tip["name"])
        self.overwrite = CheckBox(text="replace a model of this name", tooltip=tip["overwrite"])
        self.pairs = SpinBox(label="pairs", value=_DEFAULTS.pairs, min=8, max=100_000,
                             tooltip=tip["pairs"])  # fmt: skip
        self.bridge_iterations = SpinBox(label="coarse steps", value=_DEFAULTS.bridge_iterations,
                                         min=0, max=1_000_000, tooltip=tip["bridge_iterations"])  # fmt: skip
        self.generator_iterations = SpinBox(
            label="detail steps", value=_DEFAULTS.generator_iterations, min=0, max=1_000_000,
            tooltip=tip["generator_iterations"],
        )  # fmt: skip
        self.device = ComboBox(label="device", choices=device_choices(), tooltip=tip["device"])
        self.train_button = PushButton(text="Train")
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.status = Label(value="Describe your microscope, then Train.")
        self.scores = Label(value="")
        self.plot = TrainingPlot()
        for label in (self.status, self.scores):
            label.native.setWordWrap(True)
        self._container = Container(widgets=[
            self.layer, self.objective, self.pixel_size, self.na, self.immersion,
            self.wavelength, self.task, self.target_na, self.camera, self.gain, self.offset,
            self.read_noise, self.data, self.low_layer, self.high_layer, self.folder,
            self.model_name,
            self.overwrite, self.pairs, self.bridge_iterations, self.generator_iterations,
            self.device, self.train_button, self.progress, self.status, self.scores,
        ])  # fmt: skip
        layout = QVBoxLayout(self)
        layout.addWidget(self._container.native)
        layout.addWidget(self.plot)
        layout.addStretch(1)
        self.layer.changed.connect(self._from_layer)
        self.objective.changed.connect(self._from_objective)
        self.task.changed.connect(self._task_changed)
        self.camera.changed.connect(self._camera_changed)
        self.data.changed.connect(self._data_changed)
        self.train_button.changed.connect(self._on_train_clicked)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(lambda *_: self._container.reset_choices())
        self._task_changed()
        self._camera_changed()
        self._data_changed()

    def _data_changed(self, *_: Any) -> None:
        self.low_layer.visible = self.high_layer.visible = self.data.value == "layers"
        self.folder.visible = self.data.value == "folder"
        self.pairs.enabled = self.data.value == "simulated"

    def _camera_changed(self, *_: Any) -> None:
        for control in (self.gain, self.offset, self.read_noise):
            control.visible = self.camera.value == "given"

    def _image_choices(self, *_: Any) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _layer_choices(self, *_: Any) -> list[tuple[str, Any]]:
        return [("(none)", None), *self._image_choices()]

    def _from_layer(self, *_: Any) -> None:
        layer = self.layer.value
        if layer is not None and float(layer.scale[-1]) != 1.0:  # 1 is napari's "unknown"
            self.pixel_size.value = float(layer.scale[-1])

    def _from_objective(self, label: str) -> None:
        if label in OBJECTIVES:
            _, na, immersion = OBJECTIVES[label]
            self.na.value, self.immersion.value = na, immersion

    def _task_changed(self, *_: Any) -> None:
        self.target_na.enabled = self.task.value == "sr2x"

    # ------------------------------------------------------------- the job
    def microscope(self) -> MicroscopeSpec:
        """The microscope the controls describe, checked against physics.

        Raises
        ------
        MSCGMError
            With a one-line reason (impossible optics, no image to fit a camera to, …).
        """
        camera = None
        if self.camera.value == "given":
            from ..config.simulation import Camera

            try:
                camera = Camera(gain_adu_per_e=float(self.gain.value),
                                offset_adu=float(self.offset.value),
                                read_noise_e=float(self.read_noise.value))  # fmt: skip
            except ValidationError as exc:
                raise MSCGMError(f"camera: {first_error(exc)}") from None
        elif self.camera.value == "auto":
            from ..training.microscope import camera_from_image

            layer = self.layer.value
            if layer is None:
                raise MSCGMError("Choose the image to estimate the camera from ('from image').")
            camera = camera_from_image(first_plane(layer))
        sr = self.task.value == "sr2x"
        try:
            return MicroscopeSpec(
                pixel_size_um=float(self.pixel_size.value), na=float(self.na.value),
                wavelength_um=float(self.wavelength.value), immersion=self.immersion.value,
                task=self.task.value, camera=camera,
                target_na=float(self.target_na.value) if sr and self.target_na.value else None,
            )  # fmt: skip
        except ValidationError as exc:
            raise MSCGMError(first_error(exc)) from None

    def fine_tune_config(self) -> FineTuneConfig:
        """How much to simulate and train, from the controls."""
        return FineTuneConfig(
            pairs=int(self.pairs.value),
            bridge_iterations=int(self.bridge_iterations.value),
            generator_iterations=int(self.generator_iterations.value),
        )

    def _make_job(self) -> TrainJob:
        from ..training.microscope import output_path

        name = self.model_name.value.strip()
        if not name:
            raise MSCGMError("Give the model a name.")
        path = output_path(name, overwrite=bool(self.overwrite.value))  # a bad or taken name
        spec = self.microscope()
        return TrainJob(spec, name, path, self.fine_tune_config(), bool(self.overwrite.value),
                        self.device.value, pairs=self._pairs(spec))  # fmt: skip

    def _pairs(self, spec: MicroscopeSpec) -> str | list | None:
        """The user's pairs, read and checked here (in the main thread), or None."""
        if self.data.value == "simulated":
            return None
        if self.data.value == "folder":
            from ..training.datasets import read_pairs

            folder = str(self.folder.value)
            read_pairs(folder, scale=spec.scale)  # the registration check, before anything runs
            return folder
        from ..training.microscope import pairs_from_images

        low, high = self.low_layer.value, self.high_layer.value
        if low is None or high is None or low is high:
            raise MSCGMError("Choose two different image layers: the input and its target.")
        return pairs_from_images(first_plane(low), first_plane(high), scale=spec.scale)

    @property
    def is_running(self) -> bool:
        return self._job is not None

    def _on_train_clicked(self, *_: Any) -> None:
        if self.is_running:
            self.stop()
        else:
            self.train()

    def train(self) -> Any:
        """Start the fine-tune; returns the worker, or None when it could not start."""
        if self.is_running:
            return None
        try:
            job = self._make_job()
        except MSCGMError as exc:
            show_error(str(exc))
            self.status.value = f"Cannot train: {exc}"
            return None
        self._job, self.history, self.last_outcome = job, [], None
        self._stop.clear()
        self._started = None
        tune = job.fine_tune
        self._step_offsets = {"bridge": 0, "generators": tune.bridge_iterations}
        self._total = max(tune.bridge_iterations + tune.generator_iterations, 1)
        worker = run_training(job, self._stop)
        worker.yielded.connect(self._on_report)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.progress.max, self.progress.value = self._total, 0
        self.train_button.text = "Stop"
        self.scores.value = ""
        self.plot.show_history([])
        self.status.value = (
            f"Simulating {tune.pairs} training pairs for these optics…"
            if job.pairs is None
            else "Reading your pairs…"
        )
        self._activity = progress(total=self._total, desc=f"MSCGM: training '{job.name}'")
        worker.start()
        return worker

    def stop(self) -> None:
        """End the training after the current step; the model so far is kept."""
        if self.is_running:
            self._stop.set()
            self.status.value = "Stopping: saving the model trained so far…"
            self.train_button.enabled = False

    def wait(self, timeout: float | None = None) -> bool:
        """Process Qt events until the training finishes (for scripts)."""
        return wait_for(self._worker, lambda: self.is_running, timeout)

    # ------------------------------------------------------------- worker signals
    def _on_report(self, report: tuple) -> None:
        if report[0] == "validation":
            row = report[1]
            if row:
                self.history.append(row)
                self.plot.show_history(self.history)
                self.scores.value = "Validation (held-out simulated pairs):\n" + "\n".join(
                    f"{r['stage']} {r['iteration']}: {float(r['val_psnr']):.2f} dB, "
                    f"SSIM {float(r['val_ssim']):.3f}"
                    for r in self.history[-6:]
                )
            return
        _, stage, done, total = report
        now = time.perf_counter()
        overall = self._step_offsets.get(stage, 0) + done
        if self._started is None:
            self._started, self._first = now, overall
        self.progress.value = overall
        if self._activity is not None:
            self._activity.n = overall
            self._activity.refresh()
        rate = (overall - self._first) / max(now - self._started, 1e-9)
        eta = f", {eta_text((self._total - overall) / rate)}" if rate > 0 else ""
        what = "coarse (diffusion) stage" if stage == "bridge" else "detail generators"
        self.status.value = f"Training the {what}: step {done} of {total}{eta}."

    def _on_returned(self, outcome: TrainOutcome) -> None:
        self.last_outcome = outcome
        if outcome.status is Status.ERROR:
            self.status.value = f"Failed: {outcome.error}"
            show_error(outcome.error)
            return
        result = outcome.result
        models_changed()
        mscgm = next((v for k, v in result.metrics.items() if k.startswith("mscgm")), {})
        score = f" Held-out PSNR {mscgm['psnr']:.2f} dB." if mscgm.get("psnr") else ""
        early = "Stopped early; saved" if result.stopped else "Saved"
        self.status.value = (
            f"{early} '{outcome.job.name}' ({result.path}); its card: {result.card.name}.{score} "
            "It is in the Restore widget's model list."
        )
        show_info(f"MSCGM model '{outcome.job.name}' saved to {result.path}")

    def _on_finished(self) -> None:
        if self._activity is not None:
            self._activity.close()
            self._activity = None
        self._job = None
        self._worker = None
        self.train_button.text = "Train"
        self.train_button.enabled = True
        if self.last_outcome is not None and self.last_outcome.status is Status.DONE:
            self.progress.value = self.progress.max

    def closeEvent(self, event: Any) -> None:
        self._stop.set()
        super().closeEvent(event)
