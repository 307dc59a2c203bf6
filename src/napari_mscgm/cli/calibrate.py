"""``napari-mscgm calibrate``: fit a model's uncertainty calibration on pairs with ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_device_option

ORDER = 55


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="calibrate a model's uncertainty (std) on held-out pairs with ground truth",
        description=(
            "Restore every DIR/low image with --samples samples, compare the mean with "
            "DIR/high, and fit how the samples' spread (with the result's gradient, intensity "
            "and what the model added to its input) predicts the error, scaled so that "
            "±1.645 std covers 90 %% of the pixels. Writes the model with the calibration in "
            "its metadata; restore then returns a calibrated std. Score it on other data with "
            "'napari-mscgm evaluate --samples N'."
        ),
    )
    parser.add_argument("--model", required=True, metavar="NAME|PATH", help="MSCGM model")
    parser.add_argument(
        "--data", required=True, nargs="+", metavar="DIR", help="folder(s) with low/ and high/"
    )
    parser.add_argument("-o", "--output", required=True, help="the calibrated .safetensors file")
    parser.add_argument("--samples", type=int, default=8, help="samples per image (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pairs")
    parser.add_argument(
        "--blend",
        action="store_true",
        help="first fit the observation blend (keep the input's own coarsest band where it "
        "is cleaner than the bridge's; a grid search on these pairs), then the std",
    )
    add_device_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .. import load_model, save_model
    from ..errors import InputError
    from ..evaluation.calibration import fit_calibration, pixel_errors
    from ..training.datasets import read_pairs

    if args.samples < 2:
        raise InputError(f"--samples must be at least 2 for a spread, got {args.samples}")
    output = Path(args.output)
    if output.suffix != ".safetensors":
        raise InputError(f"{output}: the output must be a .safetensors file")
    model = load_model(args.model, device=args.device)
    # The raw spread is what the calibration starts from.
    model.config = model.config.model_copy(update={"calibration": None})
    pairs = [p for folder in args.data for p in read_pairs(folder, scale=model.scale)[: args.limit]]
    fitted_on = f"{len(pairs)} pairs of {', '.join(str(d) for d in args.data)}"
    if args.blend:
        from ..evaluation.blend import fit_observation_blend

        blend, rows = fit_observation_blend(model, pairs, seed=args.seed, fitted_on=fitted_on)
        for row in rows:
            print(f"blend floor {row['floor']:g} max_weight {row['max_weight']:g}: "
                  f"PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.3f}")  # fmt: skip
        print(f"observation blend: {'none helps' if blend is None else blend.model_dump()}")
        model.config = model.config.model_copy(update={"observation_blend": blend})
    errors = [
        pixel_errors(model, low, high, samples=args.samples, seed=args.seed + i)
        for i, (_, low, high) in enumerate(tqdm(pairs, disable=None, unit="image", leave=False))
    ]
    calibration = fit_calibration(errors, samples=args.samples, fitted_on=fitted_on)
    model.config = model.config.model_copy(update={"calibration": calibration})
    save_model(model, output)
    c = calibration.coefficients
    print(
        f"{output}: calibrated on {fitted_on}; variance = {c[0]:.3g}·spread² + "
        f"{c[1]:.3g}·|∇m|² + {c[2]:.3g}·|m| + {c[3]:.3g}·added² + {c[4]:.3g} "
        f"(normalised units); coverage on these pairs {calibration.coverage:.3f}"
    )
    return 0
