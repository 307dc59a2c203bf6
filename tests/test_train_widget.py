"""The "Train for my microscope" dock widget: optics from the layer, physics checks,
a real (tiny) fine-tune with progress and validation scores, Stop, and the new model
in the Restore widget. The generalists are tiny stand-ins (``tiny_generalists``)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mscgm import list_models, load_model
from napari_mscgm._napari import train_widget as train_module
from napari_mscgm._napari.train_widget import TrainWidget
from napari_mscgm._napari.widget import RestoreWidget
from napari_mscgm._napari.worker import Status
from napari_mscgm.config.microscope import FineTuneConfig
from napari_mscgm.training.checkpoint import checkpoint_path

PLUGIN = "napari-mscgm"
TRAIN = "Train (MSCGM)"
TIMEOUT_MS = 240_000


@pytest.fixture
def messages(monkeypatch):
    seen: list[tuple[str, str]] = []
    for kind in ("error", "info"):
        monkeypatch.setattr(
            train_module, f"show_{kind}", lambda msg, kind=kind: seen.append((kind, msg))
        )
    return seen


def _tiny(widget, monkeypatch, generator_iterations=4):
    tune = FineTuneConfig(pairs=8, shape=64, bridge_iterations=2,
                          generator_iterations=generator_iterations, crop=32, validation=2)  # fmt: skip
    monkeypatch.setattr(widget, "fine_tune_config", lambda: tune)
    widget.device.value = "cpu"


def _camera_image(seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    clean = 50 + 400 * np.exp(-((yy - 40) ** 2 + (xx - 50) ** 2) / 300.0)
    return (2.0 * rng.poisson(clean) + 100 + rng.normal(0, 2, clean.shape)).astype(np.uint16)


def test_opens_from_the_manifest_and_takes_the_optics_from_the_layer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(_camera_image(), name="raw", scale=(0.108, 0.108))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, TRAIN)
    assert isinstance(widget, TrainWidget)
    widget.layer.value = viewer.layers["raw"]
    assert widget.pixel_size.value == pytest.approx(0.108)
    widget.objective.value = "60x/1.4 oil"
    assert widget.na.value == pytest.approx(1.4) and widget.immersion.value == "oil"
    assert not widget.target_na.enabled
    widget.task.value = "sr2x"
    assert widget.target_na.enabled
    spec = widget.microscope()
    assert spec.task == "sr2x" and spec.resolved_target_na == pytest.approx(1.442)
    widget.camera.value = "auto"
    assert widget.microscope().camera.gain_adu_per_e == pytest.approx(2.0, rel=0.3)
    assert widget.gain.native.isHidden()
    widget.camera.value = "given"
    assert not widget.gain.native.isHidden()
    widget.gain.value, widget.offset.value, widget.read_noise.value = 0.5, 400.0, 1.2
    camera = widget.microscope().camera
    assert (camera.gain_adu_per_e, camera.offset_adu, camera.read_noise_e) == (0.5, 400.0, 1.2)


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ({"na": 1.4}, "above the refractive index 1 of air"),
        ({"pixel_size": 3.0}, "Nyquist pixel"),
        ({"camera": "auto"}, "Choose the image to estimate the camera from"),
        ({"model_name": "  "}, "Give the model a name"),
    ],
)
def test_impossible_settings_are_refused_in_one_line(
    make_napari_viewer, messages, controls, message
):
    widget = TrainWidget(make_napari_viewer())
    for name, value in controls.items():
        getattr(widget, name).value = value
    assert widget.train() is None and not widget.is_running
    assert messages[-1][0] == "error" and message in messages[-1][1]
    assert len(messages[-1][1].splitlines()) == 1 and message in widget.status.value


def test_trains_a_user_model_that_the_restore_widget_lists(
    make_napari_viewer, qtbot, tiny_generalists, user_models, messages, monkeypatch
):
    viewer = make_napari_viewer()
    restore_widget = RestoreWidget(viewer)
    widget = TrainWidget(viewer)
    _tiny(widget, monkeypatch)
    widget.model_name.value = "my-scope"
    reports = []
    worker = widget.train()
    worker.yielded.connect(reports.append)
    assert widget.train_button.text == "Stop"
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    outcome = widget.last_outcome
    assert outcome.status is Status.DONE, outcome.error
    assert (
        not outcome.result.stopped and outcome.result.path == user_models / "my-scope.safetensors"
    )
    steps = [r for r in reports if r[0] == "step"]
    assert [(s, d) for _, s, d, _ in steps] == [("bridge", 0), ("bridge", 1),
                                               *(("generators", i) for i in range(4))]  # fmt: skip
    assert widget.history and float(widget.history[-1]["val_psnr"]) > 0
    image = widget.plot.pixmap().toImage()  # the live plot has drawn both curves
    colours = {
        image.pixel(x, y) for x in range(0, image.width(), 2) for y in range(20, image.height(), 2)
    }
    assert len(colours) > 2
    assert widget.progress.value == widget.progress.max == 6
    assert "Saved 'my-scope'" in widget.status.value and widget.train_button.text == "Train"
    assert "my-scope" in list_models() and "my-scope" in restore_widget.model.choices
    assert messages[-1][0] == "info"
    # the same name again is refused before anything runs, and nothing is lost
    before = outcome.result.path.read_bytes()
    assert widget.train() is None and "exists" in messages[-1][1]
    assert outcome.result.path.read_bytes() == before


def test_stop_keeps_the_model_trained_so_far(
    make_napari_viewer, qtbot, tiny_generalists, user_models, messages, monkeypatch
):
    widget = TrainWidget(make_napari_viewer())
    _tiny(widget, monkeypatch, generator_iterations=500)
    widget.model_name.value = "stopped"
    worker = widget.train()

    def stop_in_generators(report):
        if report[0] == "step" and report[1] == "generators" and report[2] == 2:
            widget.stop()

    worker.yielded.connect(stop_in_generators)
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    result = widget.last_outcome.result
    assert result.stopped and "Stopped early" in widget.status.value
    iterations = load_model("stopped", device="cpu").config.training.iterations
    assert iterations["bridge"] == 2 and 2 <= iterations["generators"] < 500
    assert "stopped early" in result.card.read_text()
    assert checkpoint_path(result.path).is_file()  # a later run can resume it


def test_fine_tunes_from_two_layers_and_refuses_unregistered_ones(
    make_napari_viewer, qtbot, tiny_generalists, user_models, messages, monkeypatch
):
    from napari_mscgm.simulate import preset_config, simulate_pair

    viewer = make_napari_viewer()
    pair = simulate_pair(preset_config("cells", input_peak_photons=(200, 200)), shape=128, rng=2)
    viewer.add_image(pair.low, name="low", scale=(0.65, 0.65))
    viewer.add_image(pair.high, name="high", scale=(0.325, 0.325))
    viewer.add_image(pair.high[:100], name="cropped")
    widget = TrainWidget(viewer)
    _tiny(widget, monkeypatch)
    widget.na.value, widget.task.value, widget.target_na.value = 0.4, "sr2x", 0.75
    widget.pixel_size.value = 0.65
    widget.data.value = "layers"
    assert not widget.pairs.enabled
    widget.low_layer.value, widget.high_layer.value = viewer.layers["low"], viewer.layers["cropped"]
    assert widget.train() is None and "not registered for scale 2" in messages[-1][1]
    widget.high_layer.value = viewer.layers["high"]
    widget.model_name.value = "from-layers"
    assert widget.train() is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    outcome = widget.last_outcome
    assert outcome.status is Status.DONE, outcome.error
    assert (
        "Reading your pairs" not in widget.status.value
        and "Saved 'from-layers'" in widget.status.value
    )
    assert "Held-out pair" in outcome.result.card.read_text()
    assert load_model("from-layers", device="cpu").config.physics.target_na == 0.75


def test_a_full_disk_is_one_line_and_loses_nothing(
    make_napari_viewer, qtbot, tiny_generalists, user_models, messages, monkeypatch
):
    import errno

    from napari_mscgm.training import loop

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(loop, "save_model", full)
    (user_models / "mine.safetensors").write_bytes(b"someone's model")
    widget = TrainWidget(make_napari_viewer())
    _tiny(widget, monkeypatch)
    widget.model_name.value = "full-disk"
    widget.train()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    outcome = widget.last_outcome
    assert outcome.status is Status.ERROR and "Not enough disk space" in outcome.error
    assert len(outcome.error.splitlines()) == 1 and messages[-1] == ("error", outcome.error)
    assert not (user_models / "full-disk.safetensors").exists()
    assert checkpoint_path(user_models / "full-disk.safetensors").is_file()  # the run so far
    assert (user_models / "mine.safetensors").read_bytes() == b"someone's model"
