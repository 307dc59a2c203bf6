"""Reliability of the "Restore (MSCGM)" widget: every layer is restored or refused cleanly.

Each layer of the input matrix is either restored (a float32 result layer of the
right shape) or refused with one actionable error notification: no exception
escapes into Qt (pytest-qt fails a test on any), no layer is added, and the widget
is ready for the next run. Cancelled and failed runs release what they computed.

Tiny untrained model (``tiny_weights``), small images, two diffusion steps.
"""

from __future__ import annotations

import gc
import weakref

import dask.array as da
import numpy as np
import pytest

from napari_mscgm._napari import worker as worker_module
from napari_mscgm._napari.settings import SETTINGS_ENV

RUN_TIMEOUT_MS = 60_000
#: Words that say what to do; every refusal must contain one.
ACTIONS = ("choose", "split", "replace", "add a layer", "run again", "report", "use ", "convert")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Never read or write the user's real QSettings."""
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))


def _pixels(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) * 900 + 100


def _wait(qtbot, widget) -> None:
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)


def _assert_refused(viewer, widget, notifications, names: list[str], *needles: str) -> str:
    """One error notification that names the problem and says what to do; nothing added."""
    errors = [message for kind, message in notifications if kind == "error"]
    assert len(errors) == 1, notifications
    message = errors[0]
    for needle in needles:
        assert needle.lower() in message.lower(), (needle, message)
    assert any(action in message.lower() for action in ACTIONS), message
    assert "Traceback" not in message and "\n" not in message
    assert [layer.name for layer in viewer.layers] == names
    assert not widget.is_running and widget.run_button.enabled and widget.run_button.text == "Run"
    return message


# --------------------------------------------------------------------- input matrix: restored
PROCESSED = {
    "bool": _pixels((24, 20)) > 500,
    "uint8": (_pixels((24, 20)) / 4).astype(np.uint8),
    "uint16": _pixels((24, 20)).astype(np.uint16),
    "int16": (_pixels((24, 20)) - 500).astype(np.int16),
    "int32": (_pixels((24, 20)) * 1000).astype(np.int32),
    "float16": _pixels((24, 20)).astype(np.float16),
    "float32": _pixels((24, 20)).astype(np.float32),
    "float64": _pixels((24, 20)),
    "constant": np.full((24, 20), 321.5, np.float32),
    "all-zero": np.zeros((24, 20), np.uint16),
    "1x1": np.full((1, 1), 7.0, np.float32),
    "7x5": _pixels((7, 5)).astype(np.float32),
    "prime-31x37": _pixels((31, 37)).astype(np.float32),
    "prime-stack-3x17x13": _pixels((3, 17, 13)).astype(np.uint16),
    "1x300": _pixels((1, 300)).astype(np.float32),
    "300x1": _pixels((300, 1)).astype(np.float32),
    "5d-1x2x1x9x11": _pixels((1, 2, 1, 9, 11)).astype(np.float32),
}


@pytest.mark.parametrize("case", list(PROCESSED), ids=list(PROCESSED))
def test_layer_matrix_restored(viewer_widget, qtbot, notifications, case):
    viewer, widget = viewer_widget
    pixels = PROCESSED[case]
    layer = viewer.add_image(pixels, name="img", scale=(0.65,) * pixels.ndim)
    assert widget.layer.value is layer
    before = pixels.copy()
    assert widget.run() is not None
    _wait(qtbot, widget)
    assert not [n for n in notifications if n[0] == "error"], notifications
    result = viewer.layers["img_mscgm"].data
    assert result.shape == (*pixels.shape[:-2], 2 * pixels.shape[-2], 2 * pixels.shape[-1])
    assert result.dtype == np.float32 and np.isfinite(result).all()
    if case in ("constant", "all-zero"):
        assert abs(float(np.median(result)) - float(pixels.flat[0])) < 1.0
    np.testing.assert_array_equal(layer.data, before)  # the input layer is untouched
    assert widget.status.value.startswith("Done")


# --------------------------------------------------------------------- input matrix: refused
def test_rgb_and_rgba_layers_refused(viewer_widget, qtbot, notifications):
    viewer, widget = viewer_widget
    for samples in (3, 4):
        notifications.clear()
        name = f"photo{samples}"
        pixels = np.random.default_rng(0).integers(0, 255, (24, 20, samples), dtype=np.uint8)
        viewer.add_image(pixels, name=name, rgb=True)
        widget.layer.value = viewer.layers[name]
        names = [layer.name for layer in viewer.layers]
        for preview in (False, True):
            notifications.clear()
            assert widget.run(preview=preview) is None  # refused before any work
            _assert_refused(viewer, widget, notifications, names, name, "RGB", "Split RGB")


def test_six_dimensional_layer_refused(viewer_widget, qtbot, notifications):
    viewer, widget = viewer_widget
    viewer.add_image(_pixels((2, 1, 2, 1, 12, 12)).astype(np.float32), name="six")
    for preview in (False, True):
        notifications.clear()
        assert widget.run(preview=preview) is None
        _assert_refused(viewer, widget, notifications, ["six"], "6 dimensions", "2D to 5D")


def test_labels_layers_are_not_offered_and_refused_when_forced(viewer_widget, qtbot, notifications):
    viewer, widget = viewer_widget
    labels = viewer.add_labels(np.zeros((24, 20), np.uint8), name="cells")
    image = viewer.add_image(_pixels((24, 20)), name="img", scale=(0.65, 0.65))
    assert labels not in widget.layer.choices and image in widget.layer.choices
    viewer.layers.selection.active = labels  # selecting it does not make it the input
    assert widget.layer.value is image
    # Forced programmatically (a script replacing the choices): a notification, no run.
    widget.layer.choices = [(labels.name, labels)]
    widget.layer.value = labels
    assert widget.run() is None
    _assert_refused(viewer, widget, notifications, ["cells", "img"], "'cells'", "Labels layer")


def test_complex_layers_cannot_reach_the_widget(viewer_widget):
    # napari refuses complex image data itself, so no such layer can be chosen.
    viewer, widget = viewer_widget
    with pytest.raises(NotImplementedError):
        viewer.add_image(np.ones((8, 8), np.complex64))
    assert widget.layer.choices == ()


@pytest.mark.parametrize(
    ("case", "value"),
    [("nan", np.nan), ("inf", np.inf), ("minus-inf", -np.inf)],
    ids=["nan", "inf", "minus-inf"],
)
def test_non_finite_layer_refused(viewer_widget, qtbot, notifications, case, value):
    viewer, widget = viewer_widget
    pixels = _pixels((3, 24, 20))
    pixels[2, 5, 7] = value  # in the last plane
    viewer.add_image(pixels, name="img", scale=(1.0, 0.65, 0.65))
    assert widget.run() is not None
    _wait(qtbot, widget)
    message = _assert_refused(viewer, widget, notifications, ["img"], "NaN or Inf", "replace")
    assert widget.status.value == f"Failed: {message}"


def test_all_nan_layer_refused(viewer_widget, qtbot, notifications):
    viewer, widget = viewer_widget
    viewer.add_image(np.full((16, 16), np.nan, np.float32), name="img", scale=(0.65, 0.65))
    assert widget.run() is not None
    _wait(qtbot, widget)
    _assert_refused(viewer, widget, notifications, ["img"], "NaN")


def test_lazy_layer_with_nan_refused_when_first_drawn(viewer_widget, qtbot, notifications):
    # A lazy layer gives a lazy result whose planes are restored when napari draws them,
    # so its pixels are first checked when the result layer is added: that must add
    # nothing and notify, not raise into Qt.
    viewer, widget = viewer_widget
    pixels = _pixels((2, 32, 32)).astype(np.float32)
    pixels[:, 3, 3] = np.nan
    viewer.add_image(da.from_array(pixels, chunks=(1, 32, 32)), name="img", scale=(1, 0.65, 0.65))
    assert widget.run() is not None
    _wait(qtbot, widget)
    _assert_refused(viewer, widget, notifications, ["img"], "NaN or Inf", "replace")


def test_lazy_result_plane_with_nan_raises_the_input_error_when_shown(
    viewer_widget, qtbot, notifications
):
    # Known limit of lazy results: a plane with NaN is found only when it is displayed.
    # Moving there raises the actionable InputError (napari shows it as a notification);
    # the result layer and the widget stay usable.
    from napari_mscgm.errors import InputError

    viewer, widget = viewer_widget
    pixels = _pixels((2, 32, 32)).astype(np.float32)
    pixels[1, 3, 3] = np.nan
    viewer.add_image(da.from_array(pixels, chunks=(1, 32, 32)), name="img", scale=(1, 0.65, 0.65))
    viewer.dims.set_current_step(0, 0)
    assert widget.run() is not None
    _wait(qtbot, widget)
    assert [layer.name for layer in viewer.layers] == ["img", "img_mscgm"] and not notifications
    with pytest.raises(InputError, match=r"z=1 has non-finite pixels.*replace them"):
        viewer.dims.set_current_step(0, 1)
    viewer.dims.set_current_step(0, 0)  # the good plane still draws
    assert not widget.is_running and widget.run_button.enabled


# --------------------------------------------------------------------- failed and cancelled runs
def _track_tensors(monkeypatch, widget, on_progress=None) -> list[weakref.ref]:
    """Weak references to the tensors each tile makes (the upsampled input tile)."""
    refs: list[weakref.ref] = []
    real_restore = worker_module.restore

    def restore(data, model, *args, progress, **kwargs):
        real_upsample = model.upsample

        def upsample(x):
            y = real_upsample(x)
            refs.append(weakref.ref(y))
            return y

        def spy(done, total):
            if on_progress is not None:
                on_progress(done, total)
            progress(done, total)

        model.upsample = upsample
        try:
            return real_restore(data, model, *args, progress=spy, **kwargs)
        finally:
            del model.upsample

    monkeypatch.setattr(worker_module, "restore", restore)
    return refs


def test_cancelled_run_releases_its_memory(viewer_widget, qtbot, notifications, monkeypatch):
    viewer, widget = viewer_widget
    viewer.add_image(_pixels((160, 160)).astype(np.float32), name="big", scale=(0.65, 0.65))
    tensors = _track_tensors(monkeypatch, widget)
    worker = widget.run()
    worker.yielded.connect(lambda report: widget.cancel())  # Cancel at the first tile
    job = weakref.ref(widget._job)
    worker_ref = weakref.ref(worker)
    del worker
    _wait(qtbot, widget)
    assert ("info", "MSCGM restoration cancelled; no layer was added.") in notifications
    assert [layer.name for layer in viewer.layers] == ["big"]
    gc.collect()
    # The tiles computed so far and the job (with its view of the data) are gone; only the
    # model stays cached for the next run (released when the widget closes).
    assert tensors and all(ref() is None for ref in tensors)
    assert job() is None
    assert widget._state.worker is None and widget._state.model is not None
    # napari's task registry keeps a (bound ``quit`` of the) worker of every thread_worker
    # run in a viewer; what it keeps holds nothing of the run any more.
    worker = worker_ref()
    assert worker is None or worker._gen.gi_frame is None


def test_failure_mid_run_adds_nothing_and_releases_memory(
    viewer_widget, qtbot, notifications, monkeypatch
):
    viewer, widget = viewer_widget
    viewer.add_image(_pixels((160, 160)).astype(np.float32), name="big", scale=(0.65, 0.65))
    calls = []

    def fail_on_third(done, total):
        calls.append(done)
        if done == 3:
            raise RuntimeError("the GPU fell off the bus")

    real_restore = worker_module.restore
    tensors = _track_tensors(monkeypatch, widget, on_progress=fail_on_third)
    worker = widget.run()
    job = weakref.ref(widget._job)
    del worker
    _wait(qtbot, widget)
    message = _assert_refused(
        viewer, widget, notifications, ["big"], "failed unexpectedly", "RuntimeError"
    )
    assert "the GPU fell off the bus" in message and calls[-1] == 3
    assert widget.status.value.startswith("Failed")
    gc.collect()
    assert tensors and all(ref() is None for ref in tensors) and job() is None
    # The widget recovers: the next run works and adds the layer.
    monkeypatch.setattr(worker_module, "restore", real_restore)
    notifications.clear()
    assert widget.run() is not None
    _wait(qtbot, widget)
    assert "big_mscgm" in viewer.layers and not notifications


def test_failed_rerun_keeps_the_previous_result(viewer_widget, qtbot, notifications, monkeypatch):
    # A result layer from an earlier run is updated in place only by a run that succeeds.
    viewer, widget = viewer_widget
    viewer.add_image(_pixels((40, 40)).astype(np.float32), name="img", scale=(0.65, 0.65))
    assert widget.run() is not None
    _wait(qtbot, widget)
    first = np.array(viewer.layers["img_mscgm"].data)
    widget.seed.value = 99

    def broken(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(worker_module, "restore", broken)
    assert widget.run() is not None
    _wait(qtbot, widget)
    expected = ["img", "img_mscgm", "img_mscgm_consistency"]
    message = _assert_refused(viewer, widget, notifications, expected, "memory")
    assert "smaller tile size" in message
    np.testing.assert_array_equal(viewer.layers["img_mscgm"].data, first)


def test_lazy_rerun_failing_when_drawn_restores_the_previous_result(
    viewer_widget, qtbot, notifications
):
    # The result layer is updated in place by a rerun; when drawing the new lazy result
    # fails, the layer gets its previous data and metadata back.
    viewer, widget = viewer_widget
    pixels = _pixels((2, 32, 32)).astype(np.float32)
    layer = viewer.add_image(
        da.from_array(pixels, chunks=(1, 32, 32)), name="img", scale=(1, 0.65, 0.65)
    )
    assert widget.run() is not None
    _wait(qtbot, widget)
    result = viewer.layers["img_mscgm"]
    first_data, first_meta = result.data, dict(result.metadata)
    first = np.asarray(first_data[0])
    pixels[:, 3, 3] = np.nan
    layer.data = da.from_array(pixels, chunks=(1, 32, 32))
    widget.seed.value = 3
    assert widget.run() is not None
    _wait(qtbot, widget)
    _assert_refused(viewer, widget, notifications, ["img", "img_mscgm"], "NaN or Inf")
    assert viewer.layers["img_mscgm"] is result
    assert result.data is first_data and result.metadata == first_meta
    np.testing.assert_array_equal(np.asarray(result.data[0]), first)


def test_failed_replacement_of_a_result_puts_the_old_layer_back(
    viewer_widget, qtbot, notifications
):
    # A rerun whose result has other dimensions replaces the earlier result layer; when
    # drawing the new one fails, the earlier layer comes back where it was.
    viewer, widget = viewer_widget
    viewer.add_image(_pixels((32, 32)).astype(np.float32), name="img", scale=(0.65, 0.65))
    assert widget.run() is not None
    _wait(qtbot, widget)
    viewer.add_image(np.zeros((4, 4)), name="other")
    result = viewer.layers["img_mscgm"]
    viewer.layers.remove("img")
    pixels = _pixels((2, 32, 32)).astype(np.float32)
    pixels[:, 3, 3] = np.nan
    viewer.add_image(da.from_array(pixels, chunks=(1, 32, 32)), name="img", scale=(1, 0.65, 0.65))
    widget.layer.value = viewer.layers["img"]
    assert widget.run() is not None
    _wait(qtbot, widget)
    expected = ["img_mscgm", "img_mscgm_consistency", "other", "img"]
    _assert_refused(viewer, widget, notifications, expected, "NaN or Inf")
    assert viewer.layers["img_mscgm"] is result and result.ndim == 2
