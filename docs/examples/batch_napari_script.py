"""Restore every image of a folder through the napari widget, and save the results.

The same steps a biologist would click, scripted: open the files with
``viewer.open``, open the "Restore (MSCGM)" widget, set its controls, run it on
every image layer and save each ``<name>_mscgm`` layer as OME-TIFF (with the
run metadata) through the plugin's writer.

    python docs/examples/batch_napari_script.py INPUT_DIR OUTPUT_DIR --model beads-sr2x

Add ``--show`` to watch it happen. Results are written as
``OUTPUT_DIR/<name>_mscgm.ome.tif`` (and ``<name>_mscgm_std.ome.tif`` with
``--samples`` above 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SUFFIXES = (".tif", ".tiff")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--model", required=True, help="bundled model name or .safetensors path")
    parser.add_argument("--steps", type=int, default=None, help="default: the model's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--tile", type=int, default=256, help="0 = whole plane")
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--show", action="store_true", help="show the napari window")
    return parser.parse_args(argv)


def stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def set_pixel_size_from_file(layer, path: Path) -> None:
    """napari's TIFF reader ignores the OME pixel size: take it from the file (µm)."""
    from napari_mscgm.io import read_image

    _, y, x = read_image(path).pixel_size_um
    if y and x and all(s == 1 for s in layer.scale):
        layer.scale = (*layer.scale[:-2], y, x)


def main(argv: list[str] | None = None, viewer=None) -> list[Path]:
    """Run the batch; returns the written files. ``viewer``: reuse an existing viewer."""
    import napari
    from napari.layers import Image

    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    own_viewer = viewer is None
    if own_viewer:
        viewer = napari.Viewer(show=args.show)

    for path in sorted(p for p in args.input_dir.iterdir() if p.name.lower().endswith(SUFFIXES)):
        layers = viewer.open(path, plugin="napari")
        for layer in layers:
            set_pixel_size_from_file(layer, path)
        if len(layers) == 1:  # "cells.ome.tif" -> "cells", so results are "cells_mscgm"
            layers[0].name = stem(path)

    _, widget = viewer.window.add_plugin_dock_widget("napari-mscgm", "Restore (MSCGM)")
    widget.set_model(args.model)  # sets the model's default steps and eta
    if args.steps is not None:
        widget.steps.value = args.steps
    widget.seed.value = args.seed
    widget.samples.value = args.samples
    widget.tile_size.value = args.tile
    widget.overlap.value = args.overlap
    widget.device.value = args.device

    written: list[Path] = []
    failed = []
    inputs = [layer for layer in viewer.layers if isinstance(layer, Image)]
    for layer in inputs:
        widget.layer.value = layer
        if widget.run() is None or not widget.wait():
            failed.append(layer.name)
            continue
        for suffix in ("_mscgm", "_mscgm_std"):
            name = f"{layer.name}{suffix}"
            if name in viewer.layers:
                target = args.output_dir / f"{name}.ome.tif"
                viewer.layers[name].save(str(target), plugin="napari-mscgm")
                written.append(target)
        if f"{layer.name}_mscgm" not in viewer.layers:
            failed.append(layer.name)
        print(f"{layer.name}: {widget.status.value}")

    if own_viewer:
        viewer.close()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return written


if __name__ == "__main__":
    main()
