"""Make the screenshots of docs/usage.md in a real napari viewer.

    python docs/examples/make_screenshots.py                 # default model -> docs/images
    python docs/examples/make_screenshots.py --model my.safetensors --out /tmp/shots

Needs a display (on a headless machine: ``xvfb-run python …``). Writes:

- ``widget.png``: the "Restore (MSCGM)" dock widget after a run on the bead sample;
- ``before_after.png``: the degraded sample, its restoration and the ground truth,
  side by side in napari's grid mode, with a scale bar in µm;
- ``train_widget.png``: the "Train (MSCGM)" dock widget, set for the
  sample's 10×/0.4 NA microscope.

Re-run it whenever the widget or the bundled models change.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

DOCS_IMAGES = Path(__file__).resolve().parents[1] / "images"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DOCS_IMAGES, help="output folder")
    parser.add_argument("--model", default=None, help="default: the default model (fluo-sr2x)")
    parser.add_argument("--sample", default="beads", choices=("beads", "cells"))
    parser.add_argument("--steps", type=int, default=None, help="default: the model's")
    parser.add_argument("--tile", type=int, default=256)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, viewer=None) -> list[Path]:
    """Take the screenshots; returns the written PNG paths."""
    import napari
    from qtpy.QtCore import QPoint, QRect
    from qtpy.QtWidgets import QApplication

    from napari_mscgm import list_models

    args = parse_args(argv)
    model = args.model
    if model is None:  # the default generalist, as in the README and the demo
        from napari_mscgm.model_io.bundled import DEFAULT_MODEL

        bundled = list_models()
        if not bundled:
            raise SystemExit("no bundled model installed: pass --model PATH.safetensors")
        model = DEFAULT_MODEL if DEFAULT_MODEL in bundled else bundled[0]
    args.out.mkdir(parents=True, exist_ok=True)
    own_viewer = viewer is None
    if own_viewer:
        viewer = napari.Viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1400, 900)

    viewer.open_sample("napari-mscgm", args.sample)
    degraded = viewer.layers[f"{args.sample} (degraded)"]
    truth = viewer.layers[f"{args.sample} (ground truth)"]
    _, widget = viewer.window.add_plugin_dock_widget("napari-mscgm", "Restore (MSCGM)")
    widget.set_model(model)
    if args.steps is not None:
        widget.steps.value = args.steps
    widget.layer.value = degraded
    widget.seed.value = 0
    widget.samples.value = 1
    widget.tile_size.value = args.tile
    if widget.run() is None or not widget.wait(timeout=600):
        raise RuntimeError(f"the restoration did not finish: {widget.status.value}")
    restored = viewer.layers[f"{degraded.name}_mscgm"]

    written = []
    widget_png = args.out / "widget.png"
    QApplication.processEvents()  # let the layout give the final (wrapped) status its height
    status = widget.status.native  # crop the empty dock area below the status line
    bottom = status.mapTo(widget, QPoint(0, status.height())).y() + 8
    widget.grab(QRect(0, 0, widget.width(), min(bottom, widget.height()))).save(str(widget_png))
    written.append(widget_png)

    # Before / after: degraded | restored | ground truth, in µm, names on each panel.
    truth.visible = True
    viewer.layers.move_multiple(
        [viewer.layers.index(x) for x in (degraded, restored, truth)], 0
    )  # grid cells follow the layer list from the bottom
    grid = viewer.canvas.grid if hasattr(viewer.canvas, "grid") else viewer.grid
    grid.enabled = True
    grid.shape = (1, 3)
    grid.spacing = 0.02
    for layer in (degraded, restored, truth):
        with contextlib.suppress(AttributeError, KeyError):  # a nicety of napari >= 0.6
            layer._overlays["layer_name"].visible = True
    scale_bar = viewer.canvas.overlays.scale_bar  # in µm: the layers carry units
    scale_bar.visible = True
    scale_bar.font_size = 14
    viewer.reset_view()
    viewer.scene.camera.zoom *= 1.5  # the central two thirds: beads stay visible
    before_after = args.out / "before_after.png"
    viewer.screenshot(str(before_after), canvas_only=True, size=(420, 1260))
    written.append(before_after)

    # The Train widget, set for the sample's microscope (its pixel size from the layer).
    _, trainer = viewer.window.add_plugin_dock_widget("napari-mscgm", "Train (MSCGM)")
    trainer.layer.value = degraded
    trainer.na.value = 0.4
    trainer.task.value = "sr2x"
    trainer.target_na.value = 0.75
    trainer.model_name.value = "my-widefield"
    QApplication.processEvents()
    train_png = args.out / "train_widget.png"
    status = trainer.scores.native
    bottom = status.mapTo(trainer, QPoint(0, status.height())).y() + 8
    trainer.grab(QRect(0, 0, trainer.width(), min(bottom, trainer.height()))).save(str(train_png))
    written.append(train_png)

    if own_viewer:
        viewer.close()
    return written


if __name__ == "__main__":
    for path in main():
        print(path)
