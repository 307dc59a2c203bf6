"""A run of the Restore widget, off the main thread.

The napari worker runs a generator that starts :func:`napari_mscgm.restore` in one
more plain thread and yields its ``progress(done, total)`` reports, because a
generator cannot yield from inside a callback. Cancel sets an event that the progress
callback checks after every forward pass (one tile on the CPU, up to four on a GPU),
so a run stops within one pass and nothing is published.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import logging
import queue
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from qtpy.QtCore import QEventLoop, QTimer

from ..config import RestoreOptions, RunMetadata
from ..restoration import MeanStd, restore
from ..restoration.consistency import check_consistency
from .helpers import contrast_limits, friendly_error, is_lazy, traceback_text

__all__ = [
    "Cancelled", "Job", "ModelCache", "Outcome", "Status", "compute", "preload", "relay", "run_job",
    "wait_for",
]  # fmt: skip

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside ``restore``'s progress callback to stop a run."""


@dataclass
class ModelCache:
    """What outlives a run: the loaded model, the cancel event and the running worker.

    Separate from the widget, so that it can be released from ``destroyed`` after the
    Qt object is gone.
    """

    model_key: tuple[str, str] | None = None
    model: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    worker: Any = None
    #: Set when the widget goes away: a run still finishing releases the model itself.
    closed: bool = False

    def get_model(self, ref: str, device: str) -> Any:
        from ..model_io.weights import load_model

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

    def shut_down(self, *_: Any) -> None:
        """Cancel any run, stop its worker and release the model."""
        self.cancel.set()
        if self.worker is not None:
            with contextlib.suppress(RuntimeError):
                self.worker.quit()
        self.release()


@dataclass
class Job:
    """Everything a run needs, captured in the main thread."""

    layer_name: str
    data: Any
    model_ref: str
    device: str
    options: RestoreOptions
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    colormap: Any
    input_contrast: tuple[float, float]
    units: tuple[Any, ...] | None = None
    #: Add the consistency map as a layer.
    consistency_map: bool = False
    preview: bool = False
    #: Preview: the plane (leading indices) and the YX box of the input it shows.
    plane: tuple[int, ...] = ()
    offset_yx: tuple[int, int] = (0, 0)
    size_yx: tuple[int, int] | None = None

    @property
    def planes(self) -> int:
        return int(np.prod(self.data.shape[:-2])) if self.data.ndim > 2 else 1


class Status(enum.Enum):
    DONE = "done"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass
class Outcome:
    job: Job
    status: Status
    result: Any = None
    metadata: RunMetadata | None = None
    contrast: tuple[float, float] | None = None
    std_contrast: tuple[float, float] | None = None
    consistency_map: np.ndarray | None = None
    error: str = ""


def preload() -> None:
    """Import what a run imports lazily, here in the main thread: a first import in
    the worker holds the interpreter lock long enough (0.1–0.3 s) to freeze napari.
    A first dask compute, for one, imports dask.distributed when it is installed."""
    import dask.array as da
    import dask.highlevelgraph  # noqa: F401
    import safetensors.torch  # noqa: F401

    from .. import restore  # noqa: F401

    da.ones(2, chunks=1).sum().compute(scheduler="sync")


def _preview_region(job: Job, result: Any, scale: int) -> Any:
    """The window of the lazily built full restoration that the preview shows.

    Only the tiles under the box are computed, with the whole layer's normalisation and
    the noise of the true plane and pixel positions, so it shows exactly what Run gives
    there.
    """
    (y0, x0), (h, w) = job.offset_yx, job.size_yx
    index = (*job.plane, slice(y0 * scale, (y0 + h) * scale), slice(x0 * scale, (x0 + w) * scale))
    region = result[index].compute(scheduler="sync")
    return region.reshape((1,) * len(job.plane) + region.shape)


def _input_region(job: Job) -> Any:
    """The input a result restored: the whole layer, or a preview's box of one plane."""
    if not job.preview:
        return job.data
    (y0, x0), (h, w) = job.offset_yx, job.size_yx
    region = np.asarray(job.data[(*job.plane, slice(y0, y0 + h), slice(x0, x0 + w))])
    return region.reshape((1,) * len(job.plane) + region.shape)


def compute(job: Job, cache: ModelCache, progress: Callable[[int, int], None] | None) -> Outcome:
    """Load the model (cached) and restore; runs off the main thread."""
    model = cache.get_model(job.model_ref, job.device)
    if cache.cancel.is_set():
        raise Cancelled
    # One tile per forward pass on the CPU: the same speed there, and progress and
    # Cancel act per tile; GPUs batch a few tiles for throughput.
    # The map (and a preview's scores) come from check_consistency, on the result in memory.
    separate_check = job.consistency_map or job.preview
    options = job.options.model_copy(
        update={
            "batch_size": 1 if model.device.type == "cpu" else 4,
            "consistency": job.options.consistency and not separate_check,
        }
    )
    data = job.data
    if job.preview and not is_lazy(data):
        import dask.array as da

        data = da.from_array(data, chunks=(1,) * (data.ndim - 2) + data.shape[-2:])
    result, record = restore(data, model, options=options, progress=progress, return_metadata=True)
    metadata = RunMetadata.model_validate(record).with_input(job.layer_name)
    if job.preview:
        result = _preview_region(job, result, model.scale)
        region = {
            "plane": list(job.plane),
            "offset_yx": list(job.offset_yx),
            "size_yx": list(job.size_yx),
            "units": "input pixels",
        }
        metadata = metadata.for_preview(region, list(result.shape))
    mean, std = (result.mean, result.std) if isinstance(result, MeanStd) else (result, None)
    consistency_map = None
    if separate_check and job.options.consistency and not is_lazy(mean):
        checked = check_consistency(
            _input_region(job), mean, model, axes=job.options.axes, with_map=job.consistency_map
        )
        metadata = metadata.with_consistency(checked.record)
        consistency_map = checked.map
    outcome = Outcome(job, Status.DONE, result=(mean, std), metadata=metadata)
    outcome.consistency_map = consistency_map
    # Contrast from the data where it is in memory; lazy results keep the input's.
    outcome.contrast = job.input_contrast if is_lazy(mean) else contrast_limits(mean)
    if std is not None:
        outcome.std_contrast = (
            (0.0, max(job.input_contrast[1] - job.input_contrast[0], 1.0) / 4)
            if is_lazy(std)
            else (0.0, max(contrast_limits(std)[1], 1e-6))
        )
    return outcome


def wait_for(worker: Any, is_running: Callable[[], bool], timeout: float | None) -> bool:
    """Process Qt events until ``worker`` finishes or ``timeout`` seconds pass (for scripts).

    Returns
    -------
    bool
        True when nothing is running any more; False on timeout.
    """
    if not is_running():
        return True
    loop = QEventLoop()
    worker.finished.connect(loop.quit)
    if timeout is not None:
        QTimer.singleShot(int(timeout * 1000), loop.quit)
    if is_running():
        loop.exec()
    return not is_running()


def relay(
    work: Callable[[Callable[[Any], None]], Any], *, name: str, on_abort: Callable[[], None]
) -> Generator[Any, None, Any]:
    """Run ``work(report)`` in a plain thread; yield what it reports and return its result.

    A napari generator worker cannot yield from inside a callback, so ``report`` puts
    each report on a queue that this generator drains. When the generator is closed
    early (napari quits the worker), ``on_abort`` asks the work to stop, and the thread
    is joined.
    """
    messages: queue.Queue = queue.Queue()

    def target() -> None:
        try:
            messages.put(("result", work(lambda report: messages.put(("report", report)))))
        except BaseException as exc:  # ``work`` handles its errors; never hang the worker
            messages.put(("error", exc))

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, payload = messages.get()
            if kind == "report":
                yield payload
            elif kind == "error":
                raise payload
            else:
                return payload
    finally:
        if thread.is_alive():
            on_abort()
        thread.join()


@thread_worker(start_thread=False)
def run_job(job: Job, cache: ModelCache) -> Generator[tuple[int, int], None, Outcome]:
    """napari worker: yields ``(done, total)`` per tile batch and returns an outcome."""

    def work(report: Callable[[Any], None]) -> Outcome:
        def progress(done: int, total: int) -> None:
            if cache.cancel.is_set():
                raise Cancelled
            report((done, total))

        try:
            # A lazy result is computed later, by napari, when a plane is displayed:
            # no progress (and no cancel) can apply to it then.
            # A preview is computed here, in full, even from a lazy layer.
            callback = None if is_lazy(job.data) and not job.preview else progress
            return compute(job, cache, callback)
        except Cancelled:
            return Outcome(job, Status.CANCELLED)
        except BaseException as exc:
            # The traceback is logged as text: a log record that kept the exception would
            # keep its frames alive, and with them the tiles' tensors (GPU memory).
            log.error("napari-mscgm: restoration failed\n%s", traceback_text(exc))
            return Outcome(job, Status.ERROR, error=friendly_error(exc, job.options.tile_size))

    try:
        # On abort (generator closed), the cancel event stops the computation within one tile.
        return (yield from relay(work, name="napari-mscgm-restore", on_abort=cache.cancel.set))
    finally:
        if cache.closed:
            cache.release()
