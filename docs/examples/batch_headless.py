"""Restore every image of a folder with the Python API: no GUI, no napari.

The same result as ``batch_napari_script.py`` (same model, parameters and
seed give identical pixels), for servers and clusters. Each file is read
lazily (bioio), restored tile by tile and streamed to
``OUTPUT_DIR/<name>_mscgm.ome.tif`` with its pixel size and run metadata.

    python docs/examples/batch_headless.py INPUT_DIR OUTPUT_DIR --model beads-sr2x
"""

from __future__ import annotations

import argparse
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Path]:
    """Run the batch; returns the written files."""
    from napari_mscgm import load_model, restore
    from napari_mscgm.io import read_image

    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, device=args.device)  # loaded once for all files
    written: list[Path] = []
    for path in sorted(p for p in args.input_dir.iterdir() if p.name.lower().endswith(SUFFIXES)):
        image = read_image(path)  # lazy 5D TCZYX + physical pixel sizes (µm)
        target = args.output_dir / f"{image.name}_mscgm.ome.tif"
        result = restore(
            image.data,
            model,
            axes="TCZYX",
            steps=args.steps,
            seed=args.seed,
            samples=args.samples,
            tile_size=args.tile or None,
            overlap=args.overlap,
            pixel_size_um=image.pixel_size_um,
            out=target,  # streamed to disk, never wholly in memory
        )
        paths = list(result) if isinstance(result, tuple) else [result]  # (mean, std) paths
        written.extend(Path(p) for p in paths)
        print(f"{path.name} -> {', '.join(Path(p).name for p in paths)}")
    return written


if __name__ == "__main__":
    main()
