"""``napari-mscgm evaluate``: MSCGM against the baselines on pairs with ground truth."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ._options import add_device_option, add_sampling_options

ORDER = 50


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model and the baselines against ground truth (CARE-style PSNR/SSIM)",
        description=(
            "Restore every DIR/low image with the model and with the baselines (raw input, "
            "bicubic, Richardson-Lucy with the known PSFs, and a CARE baseline with --care), "
            "then score each against DIR/high: ground truth normalised by percentiles, each "
            "prediction fitted by least squares, skimage PSNR/SSIM with data_range=1. Prints "
            "a table and writes metrics.csv and metrics.json to the output directory."
        ),
    )
    parser.add_argument("--model", required=True, metavar="NAME|PATH", help="MSCGM model")
    parser.add_argument("--data", required=True, metavar="DIR", help="folder with low/ and high/")
    parser.add_argument(
        "-o", "--output", default="mscgm-evaluation", metavar="DIR", help="results directory"
    )
    parser.add_argument("--care", default=None, metavar="PATH", help="CARE baseline weights")
    add_sampling_options(parser)
    parser.add_argument(
        "--rl-iterations", type=int, default=20, help="Richardson-Lucy iterations (default 20)"
    )
    parser.add_argument(
        "--steps-sweep",
        default=None,
        metavar="N,N,...",
        help="also score MSCGM at each of these step counts and write steps.csv",
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pairs")
    add_device_option(parser)
    parser.set_defaults(func=run)


def _methods(model, args: argparse.Namespace) -> tuple[dict, int, float, float]:
    """The methods compared: the baselines, CARE (with --care) and MSCGM."""
    from .. import restore
    from ..errors import InputError
    from ..evaluation.baselines import (
        bicubic,
        deconvolution_sigma_px,
        nearest,
        richardson_lucy_baseline,
    )
    from ..model_io.weights import load_care

    scale = model.scale
    steps, eta = model.sampling(args.steps, args.eta)
    sigma = deconvolution_sigma_px(model.config.physics)
    methods = {
        "input (nearest)": lambda low: nearest(low, scale=scale),
        "bicubic": lambda low: bicubic(low, scale=scale),
        "richardson-lucy": lambda low: richardson_lucy_baseline(
            low, scale=scale, sigma_px=sigma, num_iter=args.rl_iterations
        ),
    }
    if args.care:
        care = load_care(args.care)
        if care.config.scale != scale:
            raise InputError(f"{args.care}: CARE scale {care.config.scale} ≠ model scale {scale}")
        methods["care"] = care.predict
    methods[f"mscgm ({steps} steps)"] = lambda low: restore(
        low, model, steps=steps, seed=args.seed, eta=eta, axes="YX"
    )
    return methods, steps, eta, sigma


def _steps_sweep(model, pairs: list, args: argparse.Namespace, eta: float, out: Path) -> None:
    """MSCGM at each step count of --steps-sweep, into steps.csv."""
    from .. import restore
    from ..errors import InputError
    from ..evaluation.metrics import care_metrics
    from ..evaluation.run import write_csv

    try:
        sweep = [int(s) for s in args.steps_sweep.split(",") if s.strip()]
    except ValueError:
        raise InputError(
            f"--steps-sweep must be integers like 2,5,10, got {args.steps_sweep!r}"
        ) from None
    if not sweep or min(sweep) < 1:
        raise InputError("--steps-sweep needs step counts of at least 1")
    rows = []
    for n in sweep:
        scores, seconds = [], 0.0
        for _, low, high in pairs:
            start = time.perf_counter()
            prediction = restore(low, model, steps=n, seed=args.seed, eta=eta, axes="YX")
            seconds += time.perf_counter() - start
            scores.append(care_metrics(prediction, high))
        rows.append(
            {
                "steps": n,
                "psnr": sum(s[0] for s in scores) / len(scores),
                "ssim": sum(s[1] for s in scores) / len(scores),
                "seconds_per_image": seconds / len(pairs),
            }
        )
        print(
            f"steps {n:>4}: PSNR {rows[-1]['psnr']:.2f} dB  SSIM {rows[-1]['ssim']:.3f}  "
            f"{rows[-1]['seconds_per_image']:.3f} s/image"
        )
    write_csv(out / "steps.csv", rows)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .. import load_model
    from ..errors import InputError
    from ..evaluation.run import evaluate, write_results
    from ..training.datasets import read_pairs

    model = load_model(args.model, device=args.device)
    pairs = read_pairs(args.data, scale=model.scale)
    if args.limit is not None:
        if args.limit < 1:
            raise InputError(f"--limit must be at least 1, got {args.limit}")
        pairs = pairs[: args.limit]
    methods, steps, eta, sigma = _methods(model, args)
    with tqdm(total=len(pairs), disable=None, unit="image", leave=False) as bar:
        result = evaluate(pairs, methods, progress=lambda done, total: bar.update(1))
    info = {
        "model": model.config.name,
        "model_sha256": model.sha256,
        "data": str(args.data),
        "pairs": len(pairs),
        "steps": steps,
        "seed": args.seed,
        "eta": eta,
        "rl_iterations": args.rl_iterations,
        "rl_sigma_target_px": sigma,
        "care": args.care,
        "metrics": "GT percentiles 0.1/99.9 -> [0,1]; least-squares affine fit; "
        "skimage PSNR/SSIM, data_range=1",
    }
    out = Path(args.output)
    csv_path, json_path = write_results(result, out, info=info)
    print(f"{model.config.name} on {args.data} ({len(pairs)} pairs)")
    print(result.table())
    if args.steps_sweep:
        _steps_sweep(model, pairs, args, eta, out)
    print(f"wrote {csv_path} and {json_path}")
    return 0
