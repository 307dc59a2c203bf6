"""``napari-mscgm simulate``: write simulated low/high OME-TIFF pairs with pixel sizes."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate paired low/high-resolution images from first principles",
        description=(
            "Simulate paired widefield images of the same sample (a structure class of "
            "docs/simulator.md, 'mixed' or a generalist preset such as 'fluo'): "
            "Airy PSFs, pixel integration and sCMOS Poisson-Gaussian noise; default 10x/0.4 NA "
            "(0.65 um pixels) -> 20x/0.75 NA (0.325 um pixels) at 520 nm. Writes "
            "DIR/low/NAME.ome.tif (camera ADU) and DIR/high/NAME.ome.tif (noise-free target "
            "photons) with physical pixel sizes; 'napari-mscgm train --data DIR' and "
            "'napari-mscgm evaluate --data DIR' read this layout."
        ),
    )
    parser.add_argument(
        "--preset",
        default="mixed",
        help="a structure class, mixed, fluo or fluo-denoise (default mixed)",
    )
    parser.add_argument(
        "--photons", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
        help="input peak photons drawn from [LOW, HIGH] (default: the preset's)",
    )  # fmt: skip
    parser.add_argument(
        "--input-na", type=float, default=None, metavar="NA",
        help="input objective NA, e.g. 0.3 for a domain-shift set (default: the preset's)",
    )  # fmt: skip
    parser.add_argument(
        "--same-objective", action="store_true",
        help="image input and target through the target objective (denoising data, scale 1)",
    )  # fmt: skip
    parser.add_argument("--n", type=int, default=10, help="number of pairs (default 10)")
    parser.add_argument(
        "--shape", type=int, default=256, help="target image size in pixels (default 256)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.set_defaults(func=run)


def _config(args: argparse.Namespace):
    """The preset with the command line's optics and photon budget (validated)."""
    from ..simulate import preset_config

    base = preset_config(args.preset)
    overrides = {}
    if args.photons is not None:
        overrides["input_peak_photons"] = tuple(args.photons)
    if args.same_objective or args.input_na is not None:
        objective = (base.target if args.same_objective else base.input).model_dump()
        overrides["input"] = {**objective, **({"na": args.input_na} if args.input_na else {})}
    return preset_config(args.preset, **overrides)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import InputError, OutputError
    from ..io import write_ome_tiff
    from ..simulate import simulate_pairs

    if args.n < 1:
        raise InputError(f"--n must be at least 1, got {args.n}")
    if args.seed < 0:
        raise InputError(f"--seed must be non-negative, got {args.seed}")
    config = _config(args)
    root = Path(args.output)
    if root.exists() and not root.is_dir():
        raise OutputError(f"{root}: exists and is not a directory")
    if not root.parent.exists():
        raise OutputError(f"{root.parent}: output directory does not exist")
    names = [f"{args.preset}_{args.seed}_{i:04d}" for i in range(args.n)]
    paths = [(root / "low" / f"{n}.ome.tif", root / "high" / f"{n}.ome.tif") for n in names]
    if not args.overwrite:
        for pair in paths:
            for path in pair:
                if path.exists():
                    raise OutputError(f"{path}: already exists (use --overwrite to replace it)")
    pairs = simulate_pairs(config, n=args.n, shape=args.shape, seed=args.seed)
    (root / "low").mkdir(parents=True, exist_ok=True)
    (root / "high").mkdir(exist_ok=True)
    for pair, (low_path, high_path) in tqdm(
        zip(pairs, paths, strict=True), total=args.n, disable=None, unit="pair"
    ):
        sides = (
            (low_path, pair.low, pair.low_pixel_size_um, "simulated input (ADU)"),
            (high_path, pair.high, pair.high_pixel_size_um,
             f"simulated ground truth ({pair.metadata['high_units']})"),
        )  # fmt: skip
        for path, pixels, px, content in sides:
            meta = {"content": content, **pair.metadata}
            write_ome_tiff(path, pixels, axes="YX", pixel_size_um=(None, px, px), metadata=meta)
    print(f"{args.n} pairs -> {root}/low, {root}/high")
    return 0
