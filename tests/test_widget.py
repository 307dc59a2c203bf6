"""The napari plugin: manifest, dock widget, runs, layers, cancel, latency, writer.

Every test uses the tiny untrained model (``tiny_weights``), never the bundled ones,
tiny images and 2–3 steps, so the file runs in well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import tifffile

from napari_mscgm._napari import model_selection
from napari_mscgm._napari import worker as worker_module
from napari_mscgm._napari.settings import SETTINGS_ENV
from napari_mscgm._napari.widget import LOAD_FROM_FILE, RestoreWidget
from napari_mscgm.io import RUN_METADATA_KEY, read_image, read_run_metadata
from napari_mscgm.model_io.weights import read_model_config

PLUGIN = "napari-mscgm"
WIDGET = "Restore (MSCGM)"
RUN_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Never read or write the user's real QSettings."""
    path = tmp_path / "settings.ini"
    monkeypatch.setenv(SETTINGS_ENV, str(path))
    return path


def _image(shape=(48, 48), seed=0) -> np.ndarray:
    """A small bead-like image in camera units (Poisson noise on a few blobs)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    clean = np.zeros(shape[-2:])
    for y, x in rng.uniform(4, min(shape[-2:]) - 4, size=(6, 2)):
        clean += 400 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 4.0)
    clean = np.broadcast_to(clean, shape)
    return rng.poisson(clean + 100).astype(np.uint16)


def _run(qtbot, widget, preview=False):
    worker = widget.run(preview=preview)
    assert worker is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    return worker


# --------------------------------------------------------------------- manifest
def test_manifest_validates_and_lists_contributions():
    from npe2 import PluginManifest
    from npe2.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["validate", PLUGIN, "--imports"])
    assert result.exit_code == 0, result.output
    manifest = PluginManifest.from_distribution(PLUGIN)
    assert manifest.contributions.widgets[0].display_name == WIDGET
    assert {s.key for s in manifest.contributions.sample_data} == {"beads", "cells"}
    writer = manifest.contributions.writers[0]
    assert ".ome.tif" in writer.filename_extensions
    assert [str(t) for t in writer.layer_types] == ["image"]


def test_widget_opens_via_manifest_without_bundled_models(make_napari_viewer, monkeypatch):
    monkeypatch.setattr(model_selection, "list_models", lambda: [])
    viewer = make_napari_viewer()
    viewer.add_image(_image(), name="cells", scale=(0.65, 0.65))
    # No widget name: the plugin's first widget, which is what `napari -w napari-mscgm` opens.
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN)
    assert isinstance(widget, RestoreWidget)
    assert dock.name.startswith(WIDGET)
    assert widget.layer.value is viewer.layers["cells"]
    assert list(widget.model.choices) == [LOAD_FROM_FILE]
    assert "load from file" in widget.model_card.value
    assert not widget.run_button.enabled
    assert widget.device.choices[0] == "auto" and "cpu" in widget.device.choices
    assert widget.device.native.itemText(0) == "auto (cpu)"  # shows what auto picks here


def test_user_models_appear_in_the_model_list(make_napari_viewer, user_models, tiny_model):
    from napari_mscgm import save_model

    viewer = make_napari_viewer()
    viewer.add_image(_image(), name="cells", scale=(0.65, 0.65))
    widget = RestoreWidget(viewer)
    assert "my-scope" not in widget.model.choices
    save_model(tiny_model, user_models / "my-scope.safetensors")
    widget.refresh_models()  # what the Train widget calls when it saves a model
    labels = [widget.model.native.itemText(i) for i in range(widget.model.native.count())]
    assert "my-scope (user)" in labels
    widget.model.value = "my-scope"
    assert widget.run_button.enabled and "0.65 → 0.325 µm" in widget.model_card.value


def test_settings_go_to_napari_preferences_where_napari_has_them(
    make_napari_viewer, tiny_weights, monkeypatch
):
    from napari.settings._plugin_config_generator import plugin_configuration_generator

    from napari_mscgm._napari import settings as settings_module

    # napari's own plugin-settings model for our manifest's "restore" section (in memory)
    section = plugin_configuration_generator()["napari-mscgm"](config_path=None).restore
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    monkeypatch.setattr(settings_module, "napari_section", lambda: section)
    assert settings_module.WidgetSettings().backend == "napari"
    viewer = make_napari_viewer()
    widget = RestoreWidget(viewer)
    widget.set_model(tiny_weights)
    assert not section.saved or section.model == tiny_weights
    widget.steps.value, widget.seed.value, widget.tile_size.value = 7, 99, 64
    assert section.saved and (section.steps, section.seed, section.tile_size) == (7, 99, 64)
    assert section.model == tiny_weights and tiny_weights in section.model_files
    again = RestoreWidget(viewer)  # a new session reads them back
    assert (again.steps.value, again.seed.value, again.tile_size.value) == (7, 99, 64)
    assert again.model.value == tiny_weights
    # without napari's plugin settings (older napari), QSettings as before
    monkeypatch.setattr(settings_module, "napari_section", lambda: None)
    assert settings_module.WidgetSettings().backend == "qsettings"


# --------------------------------------------------------------------- controls
def test_parameters_bind_and_persist(
    make_napari_viewer, tiny_weights, monkeypatch, isolated_settings
):
    monkeypatch.setattr(model_selection, "list_models", lambda: [])  # whatever is installed
    viewer = make_napari_viewer()
    viewer.add_image(_image(), name="beads", scale=(0.65, 0.65))
    widget = RestoreWidget(viewer)
    # "load from file…" opens a file dialog; the chosen file becomes the model.
    monkeypatch.setattr(
        model_selection.QFileDialog,
        "getOpenFileName",
        staticmethod(lambda *a, **k: (tiny_weights, "")),
    )
    assert widget.model.value == LOAD_FROM_FILE  # no bundled model here, nothing chosen yet
    widget.model.native.activated.emit(widget.model.native.findText(LOAD_FROM_FILE))
    assert widget.model.value == tiny_weights
    config = read_model_config(tiny_weights)
    assert widget.steps.value == config.bbdp.default_steps  # a new model brings its defaults
    assert widget.eta.value == config.bbdp.default_eta
    assert "super-resolution ×2" in widget.model_card.value
    assert "0.65 → 0.325 µm pixels" in widget.model_card.value
    assert "No training is recorded" in widget.model_card.value  # the tiny model is untrained
    assert (widget.steps.min, widget.steps.max) == (1, 200)
    assert (widget.samples.min, widget.samples.max) == (1, 16)
    # The tiny model expects 0.65 µm input pixels; this layer has 0.325 µm.
    viewer.layers["beads"].scale = (0.325, 0.325)
    assert not widget.pixel_warning.native.isHidden()
    assert "0.325 µm" in widget.pixel_warning.value and "0.65 µm" in widget.pixel_warning.value
    viewer.add_image(_image(), name="matching", scale=(0.64, 0.64))
    assert widget.layer.value is viewer.layers["matching"]  # follows the selection
    assert widget.pixel_warning.native.isHidden()
    viewer.layers.selection.active = viewer.layers["beads"]
    assert (
        widget.layer.value is viewer.layers["beads"] and not widget.pixel_warning.native.isHidden()
    )

    seeds = {widget.randomize_seed() for _ in range(5)}
    assert len(seeds) > 1
    before = widget.seed.value
    widget.random_seed.clicked.emit()  # the button itself
    assert widget.seed.value != before
    widget.steps.value, widget.seed.value, widget.eta.value = 7, 1234, 0.5
    widget.samples.value, widget.tile_size.value, widget.overlap.value = 3, 64, 16
    widget.device.value = "cpu"
    job = widget._make_job(preview=False)
    options = job.options  # the validated RestoreOptions the run will use
    assert (options.steps, options.seed, options.eta, options.samples) == (7, 1234, 0.5, 3)
    assert (options.tile_size, options.overlap, job.device) == (64, 16, "cpu")
    assert options.pixel_size_um == (None, 0.325, 0.325)  # from the layer scale
    widget.tile_size.value = 0
    assert widget._make_job(preview=False).options.tile_size is None  # "whole plane"
    assert widget.tile_size.native.currentText() == "whole plane"
    widget.close()

    # A new widget (a new napari session) starts from the stored choices.
    again = RestoreWidget(viewer)
    assert again.model.value == tiny_weights
    assert (again.steps.value, again.seed.value, again.eta.value) == (7, 1234, 0.5)
    assert (again.samples.value, again.tile_size.value, again.overlap.value) == (3, 0, 16)
    assert again.device.value == "cpu"
    assert isolated_settings.exists()
    again.close()


# --------------------------------------------------------------------- runs and layers
DESIGN_METADATA = (
    "version", "model", "model_sha256", "steps", "seed", "eta", "samples", "tile_size",
    "overlap", "device", "normalization", "input_name", "input_shape",
)  # fmt: skip


def test_run_on_sample_gives_placed_labelled_layer(viewer_widget, qtbot):
    from napari_mscgm._napari.sample_data import sample_layers

    viewer, widget = viewer_widget
    degraded, truth = sample_layers("beads")
    # A 48-pixel corner keeps the test fast; cropping at the origin keeps the placement.
    viewer.add_image(degraded[0][:48, :48], **degraded[1])
    viewer.add_image(truth[0][:96, :96], **truth[1])
    degraded = viewer.layers["beads (degraded)"]
    widget.layer.value = degraded
    # The guard: a bundled sample brings the model it is made for, and its defaults.
    assert widget.model.value == degraded.metadata["napari-mscgm-sample"]["model"] == "beads-sr2x"
    assert "chosen" in widget.status.value and widget.steps.value == 1
    assert widget.pixel_warning.native.isHidden()  # the sample matches the model's pixel size
    widget.seed.value = 7
    _run(qtbot, widget)

    out = viewer.layers["beads (degraded)_mscgm"]
    assert out.data.shape == (96, 96) and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, (0.325, 0.325))
    # Centre of output pixel 0 is a quarter input pixel before the input's first centre.
    np.testing.assert_allclose(out.translate, (-0.1625, -0.1625))
    truth = viewer.layers["beads (ground truth)"]  # the simulator's target grid
    np.testing.assert_allclose(truth.scale, out.scale)
    np.testing.assert_allclose(truth.translate, out.translate)
    meta = out.metadata[RUN_METADATA_KEY]
    for key in DESIGN_METADATA:
        assert key in meta, key
    assert (meta["steps"], meta["seed"], meta["samples"]) == (1, 7, 1)
    assert meta["model"] == "beads-sr2x" and meta["consistency"]["verdict"] == "consistent"
    assert meta["input_name"] == "beads (degraded)" and meta["input_shape"] == [48, 48]
    assert meta["device"] == "cpu" and meta["tile_size"] == 64
    lo, hi = out.contrast_limits
    assert np.percentile(out.data, 1) <= lo + 1e-3 < hi <= out.data.max() + 1e-3
    assert "_mscgm_std" not in " ".join(layer.name for layer in viewer.layers)
    # The consistency map lies on the input's grid, and the status line gives the verdict.
    check = viewer.layers["beads (degraded)_mscgm_consistency"]
    assert check.data.shape == (48, 48)
    np.testing.assert_allclose(check.scale, degraded.scale)
    np.testing.assert_allclose(check.translate, degraded.translate)
    assert set(meta["consistency"]) >= {"rsp", "rse", "inconsistent_fraction", "verdict"}
    assert check.metadata[RUN_METADATA_KEY]["kind"] == "consistency"
    assert (
        widget.status.value.startswith("Done")
        and "Consistent with the input" in widget.status.value
    )
    assert widget.run_button.text == "Run"


def test_same_seed_same_result_and_rerun_updates_in_place(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    viewer.add_image(_image(), name="img", scale=(0.65, 0.65))
    widget.seed.value = 3
    _run(qtbot, widget)
    first = np.array(viewer.layers["img_mscgm"].data)
    n_layers = len(viewer.layers)
    _run(qtbot, widget)
    assert len(viewer.layers) == n_layers  # updated, not piled up
    np.testing.assert_array_equal(viewer.layers["img_mscgm"].data, first)
    widget.seed.value = 4
    _run(qtbot, widget)
    assert len(viewer.layers) == n_layers
    assert not np.array_equal(viewer.layers["img_mscgm"].data, first)
    assert viewer.layers["img_mscgm"].metadata[RUN_METADATA_KEY]["seed"] == 4


def test_samples_add_uncertainty_layer(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    viewer.add_image(_image(), name="img", scale=(0.65, 0.65), translate=(5.0, 7.0))
    widget.samples.value = 2
    _run(qtbot, widget)
    mean, std = viewer.layers["img_mscgm"], viewer.layers["img_mscgm_std"]
    assert mean.data.shape == std.data.shape == (96, 96)
    np.testing.assert_allclose(std.scale, mean.scale)
    np.testing.assert_allclose(std.translate, (5.0 - 0.1625, 7.0 - 0.1625))
    assert (std.data >= 0).all() and std.data.max() > 0
    assert std.metadata[RUN_METADATA_KEY]["kind"] == "std"
    assert mean.metadata[RUN_METADATA_KEY]["samples"] == 2
    # Back to one sample: the stale uncertainty map goes away.
    widget.samples.value = 1
    _run(qtbot, widget)
    assert "img_mscgm_std" not in viewer.layers and "img_mscgm" in viewer.layers


def test_cancel_stops_within_one_tile_and_adds_nothing(
    viewer_widget, qtbot, notifications, monkeypatch
):
    viewer, widget = viewer_widget
    viewer.add_image(_image((160, 160)), name="big", scale=(0.65, 0.65))
    # Watch restore's progress calls in the worker thread: each follows one tile.
    calls: list[tuple[int, int, bool]] = []  # (done, total, cancel already requested)
    real_restore = worker_module.restore

    def watched_restore(*args, progress, **kwargs):
        def spy(done, total):
            calls.append((done, total, widget._state.cancel.is_set()))
            progress(done, total)

        return real_restore(*args, progress=spy, **kwargs)

    monkeypatch.setattr(worker_module, "restore", watched_restore)
    worker = widget.run()
    assert widget.run_button.text == "Cancel"
    clicked = []

    def on_progress(report):
        if not clicked:
            clicked.append(report)
            widget.run_button.clicked.emit()  # the Run button is Cancel while running

    worker.yielded.connect(on_progress)
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    total = calls[0][1]
    assert total >= 9  # 160 px in 64-px tiles
    # After the click, the tile in flight finishes and its progress call raises: exactly
    # one call sees the cancel, so no further tile was started.
    assert [c[2] for c in calls].count(True) == 1, calls
    assert calls[-1][2] and calls[-1][0] < total
    assert [layer.name for layer in viewer.layers] == ["big"]
    assert widget.status.value.startswith("Cancelled")
    assert widget.run_button.text == "Run" and widget.run_button.enabled
    assert ("info", "MSCGM restoration cancelled; no layer was added.") in notifications


def test_event_loop_stays_responsive(viewer_widget, qtbot, monkeypatch):
    # Shown by structure, not by timing: the restoration runs in another thread, and while it
    # runs the main thread goes on handling events (a timer's ticks) — the run waits for
    # them, which could never happen if the computation blocked the event loop.
    import threading

    from qtpy.QtCore import QTimer

    viewer, widget = viewer_widget
    viewer.add_image(_image((96, 96)), name="img", scale=(0.65, 0.65))
    ticks_during_run = threading.Semaphore(0)
    running = threading.Event()
    seen: dict[str, object] = {}
    real_restore = worker_module.restore

    def observed_restore(*args, **kwargs):
        seen["thread"] = threading.current_thread()
        running.set()
        # Three ticks of the main thread's timer must arrive while this run is going on.
        seen["ticks"] = all(ticks_during_run.acquire(timeout=30) for _ in range(3))
        return real_restore(*args, **kwargs)

    monkeypatch.setattr(worker_module, "restore", observed_restore)
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: running.is_set() and ticks_during_run.release())
    timer.start()
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    timer.stop()
    assert seen["thread"] is not threading.main_thread()
    assert seen["ticks"] is True  # the event loop kept running during the computation
    assert "img_mscgm" in viewer.layers


def test_errors_become_actionable_notifications(viewer_widget, qtbot, notifications):
    viewer, widget = viewer_widget
    assert widget.run() is None  # no image layer yet
    assert notifications[-1][0] == "error" and "image layer" in notifications[-1][1]
    viewer.add_image(_image(), name="img", scale=(0.65, 0.65))
    widget.overlap.value = 40  # more than half of the 64-pixel tile
    assert widget.run() is None  # RestoreOptions refuses it before any run starts
    kind, message = notifications[-1]
    assert kind == "error" and "overlap 40 must be at most half of tile_size 64" in message
    assert widget.status.value.startswith("Failed")
    assert [layer.name for layer in viewer.layers] == ["img"]
    assert widget.run_button.enabled  # ready for another try


# --------------------------------------------------------------------- stacks, preview, lazy
@pytest.mark.parametrize(
    ("shape", "axes"), [((3, 48, 48), "ZYX"), ((2, 2, 40, 40), "TZYX")], ids=["Z", "TZ"]
)
def test_stack_restores_plane_by_plane_with_progress(viewer_widget, qtbot, shape, axes):
    viewer, widget = viewer_widget
    planes = int(np.prod(shape[:-2]))
    stack = np.stack([_image(shape[-2:], seed=s) for s in range(planes)]).reshape(shape)
    lead = (2.0,) * (len(shape) - 2)
    viewer.add_image(stack, name="stack", scale=(*lead, 0.65, 0.65))
    statuses: list[str] = []
    worker = widget.run()
    worker.yielded.connect(lambda _: statuses.append(widget.status.value))
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    out = viewer.layers["stack_mscgm"]
    assert out.data.shape == (*shape[:-2], 2 * shape[-2], 2 * shape[-1])
    np.testing.assert_allclose(out.scale, (*lead, 0.325, 0.325))
    np.testing.assert_allclose(out.translate, (*(0.0,) * len(lead), -0.1625, -0.1625))
    assert out.metadata[RUN_METADATA_KEY]["axes"] == axes
    assert statuses[-1].endswith(f"plane {planes}/{planes}, tile 1/1"), statuses
    assert all(f"plane {p}/{planes}" in " ".join(statuses) for p in range(1, planes + 1))
    assert widget.progress.value == widget.progress.max == planes
    # Preview: only the plane on screen (the last one here), put on that plane.
    last = tuple(n - 1 for n in shape[:-2])
    for axis, index in enumerate(last):
        viewer.dims.set_current_step(axis, index)
    _run(qtbot, widget, preview=True)
    preview = viewer.layers["stack_mscgm_preview"]
    assert preview.data.shape == (*(1,) * len(lead), 2 * shape[-2], 2 * shape[-1])
    assert preview.metadata[RUN_METADATA_KEY]["preview_region"]["plane"] == list(last)
    np.testing.assert_allclose(preview.translate[:-2], [2.0 * i for i in last])
    # The same noise field as the full run: the preview equals that plane of it.
    np.testing.assert_allclose(preview.data.reshape(out.data.shape[-2:]), out.data[last], atol=1e-3)


def test_preview_restores_only_the_current_plane_in_view(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    stack = np.stack([_image((300, 300), seed=s) for s in range(3)])
    viewer.add_image(stack, name="stack", scale=(2.0, 0.65, 0.65))
    viewer.dims.set_current_step(0, 1)
    # Zoom in on input pixel (100, 120): about 40 input pixels across the canvas.
    camera = viewer.scene.camera
    camera.center = (2.0, 100 * 0.65, 120 * 0.65)
    camera.zoom = max(viewer.canvas.size) / (40 * 0.65)
    worker = widget.run(preview=True)
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    assert worker is not None and "stack_mscgm" not in viewer.layers
    preview = viewer.layers["stack_mscgm_preview"]
    meta = preview.metadata[RUN_METADATA_KEY]
    assert meta["preview"] and meta["preview_region"]["plane"] == [1]
    y0, x0 = meta["preview_region"]["offset_yx"]
    _, height, width = preview.data.shape
    assert preview.data.shape[0] == 1  # plane 1 only, placed on plane 1 below
    assert 8 <= height // 2 <= 42 and 8 <= width // 2 <= 42  # just what is in view
    assert y0 <= 100 < y0 + height // 2 and x0 <= 120 < x0 + width // 2
    np.testing.assert_allclose(preview.translate, (2.0, y0 * 0.65 - 0.1625, x0 * 0.65 - 0.1625))
    np.testing.assert_allclose(preview.scale, (2.0, 0.325, 0.325))
    assert meta["preview_region"]["size_yx"] == [height // 2, width // 2]
    assert meta["input_shape"] == [3, 300, 300] and meta["output_shape"] == [1, height, width]
    # Exactly the pixels a full run gives there: the whole layer's normalisation and
    # the noise of plane 1 at these positions, not those of a cut-out.
    full = worker_module.restore(
        stack, widget._state.model, steps=2, seed=0, axes="ZYX", tile_size=64, overlap=8,
        batch_size=1,  # as the widget on the CPU: the same float rounding
    )  # fmt: skip
    np.testing.assert_allclose(
        preview.data[0], full[1, 2 * y0 : 2 * y0 + height, 2 * x0 : 2 * x0 + width], rtol=1e-6
    )
    assert widget.progress.value == widget.progress.max == 1


@pytest.mark.parametrize("kind", ["dask", "zarr"])
def test_lazy_input_gives_lazy_output(viewer_widget, qtbot, kind):
    import zarr

    viewer, widget = viewer_widget
    stack = np.stack([_image(seed=s) for s in range(2)])
    if kind == "dask":
        lazy = da.from_array(stack, chunks=(1, 48, 48))
    else:
        lazy = zarr.create_array(store={}, shape=stack.shape, chunks=(1, 48, 48), dtype=stack.dtype)
        lazy[:] = stack
    viewer.add_image(lazy, name="lazy", scale=(1.0, 0.65, 0.65), contrast_limits=(90, 600))
    _run(qtbot, widget)
    out = viewer.layers["lazy_mscgm"]
    assert isinstance(out.data, da.Array)
    assert out.data.shape == (2, 96, 96)
    assert tuple(out.contrast_limits) == (90, 600)  # the input's, without computing
    assert "lazy" in widget.status.value
    plane = np.asarray(out.data[1])
    assert plane.shape == (96, 96) and np.isfinite(plane).all()


# --------------------------------------------------------------------- sample, writer, close
def test_sample_data_opens_with_scale_in_um(make_napari_viewer):
    from napari_mscgm.samples import load_sample

    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "cells")
    degraded, truth = viewer.layers["cells (degraded)"], viewer.layers["cells (ground truth)"]
    np.testing.assert_array_equal(degraded.data, load_sample("cells_low")[0])
    np.testing.assert_array_equal(truth.data, load_sample("cells_high")[0])
    assert truth.data.shape == tuple(2 * n for n in degraded.data.shape)
    np.testing.assert_allclose(degraded.scale, (0.65, 0.65))
    np.testing.assert_allclose(truth.scale, (0.325, 0.325))
    np.testing.assert_allclose(truth.translate, (-0.1625, -0.1625))
    assert [str(u) for u in degraded.units] == ["micrometer", "micrometer"]
    assert degraded.data.std() > 0 and truth.data.max() > truth.data.min()
    assert not truth.visible  # shown on demand, for comparison


def test_writer_round_trip(viewer_widget, qtbot, tmp_path):
    viewer, widget = viewer_widget
    viewer.add_image(_image(), name="img", scale=(0.65, 0.65))
    widget.samples.value = 2
    _run(qtbot, widget)
    layer = viewer.layers["img_mscgm"]
    written = layer.save(str(tmp_path / "result.ome.tif"), plugin=PLUGIN)
    assert written == [str(tmp_path / "result.ome.tif")]
    np.testing.assert_array_equal(tifffile.imread(written[0]), layer.data)
    assert read_run_metadata(written[0]) == layer.metadata[RUN_METADATA_KEY]
    image = read_image(written[0])
    assert image.pixel_size_um[1:] == pytest.approx((0.325, 0.325))
    # Read back into napari with the OME pixel size.
    again = viewer.open(written[0], plugin="napari")[0]
    np.testing.assert_array_equal(again.data, layer.data)
    # A suffix-less path gets the OME-TIFF suffix; the std map is saved the same way.
    std_path = viewer.layers["img_mscgm_std"].save(str(tmp_path / "std"), plugin=PLUGIN)
    assert std_path == [str(tmp_path / "std.ome.tif")]
    assert read_run_metadata(std_path[0])["kind"] == "std"


def test_closing_the_widget_releases_the_model(viewer_widget, qtbot, monkeypatch):
    import gc
    import weakref

    import torch

    viewer, widget = viewer_widget
    viewer.add_image(_image(), name="img", scale=(0.65, 0.65))
    _run(qtbot, widget)
    assert widget._state.model is not None  # cached between runs
    model = weakref.ref(widget._state.model)
    emptied: list[bool] = []  # when the CUDA cache is emptied: is the model gone by then?
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(model() is None))
    viewer.window.remove_dock_widget(widget)
    assert widget._state.model is None and widget._state.closed
    gc.collect()
    # Nothing else (worker, job, result layer) keeps the model, so its memory is freed,
    # and the cache is emptied after that: GPU memory goes back to the system.
    assert model() is None
    assert emptied and emptied[0]


def test_an_inconsistent_result_warns_what_to_do(viewer_widget, qtbot, notifications):
    from napari_mscgm._napari.sample_data import sample_layers

    viewer, widget = viewer_widget
    degraded, _ = sample_layers("cells")
    viewer.add_image(degraded[0][:96, :96], **degraded[1])
    widget.layer.value = viewer.layers["cells (degraded)"]
    assert widget.model.value == "fluo-sr2x"  # the guard picks the model recommended for it
    widget.set_model("beads-sr2x")  # the wrong one, on purpose
    _run(qtbot, widget)
    assert "INCONSISTENT" in widget.status.value
    kind, message = notifications[-1]
    assert kind == "warning" and "inconsistent with the measured image" in message
    assert "another model" in message and "pixel size" in message
