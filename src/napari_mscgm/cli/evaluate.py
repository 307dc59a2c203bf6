"""``napari-mscgm evaluate``: MSCGM against the baselines on pairs with ground truth."""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

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
    parser.add_argument("--steps", type=int, default=None, help="bridge steps (model default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eta", type=float, default=None, help="bridge sampling noise, 1 … 0 (model default)"
    )
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
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N, mps")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..datasets import read_pairs
    from ..errors import InputError
    from ..evaluate import (
        bicubic,
        care_metrics,
        deconvolution_sigma_px,
        evaluate,
        load_care,
        nearest,
        richardson_lucy_baseline,
        write_results,
    )
    from ..model import load_model
    from ..pipeline import restore

    model = load_model(args.model, device=args.device)
    scale = model.scale
    pairs = read_pairs(args.data, scale=scale)
    if args.limit is not None:
        if args.limit < 1:
            raise InputError(f"--limit must be at least 1, got {args.limit}")
        pairs = pairs[: args.limit]
    steps = model.config.bbdp.default_steps if args.steps is None else args.steps
    sigma = deconvolution_sigma_px(model.config.physics)

    eta = model.config.bbdp.default_eta if args.eta is None else args.eta

    def mscgm(low, steps=steps):
        return restore(low, model, steps=steps, seed=args.seed, eta=eta, axes="YX")

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
    methods[f"mscgm ({steps} steps)"] = mscgm

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
                prediction = mscgm(low, steps=n)
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
        with open(out / "steps.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print(f"wrote {csv_path} and {json_path}")
    return 0
