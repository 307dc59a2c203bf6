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
        help="score a model and the baselines against ground truth (PSNR, SSIM, HF error, trust)",
        description=(
            "Restore every DIR/low image with the model and with the baselines (raw input, "
            "bicubic, Richardson-Lucy with the known PSFs or non-local means for denoising, "
            "a CARE baseline with --care, and the Fourier oracle at the input's Nyquist "
            "frequency as the reference limit), then score each against DIR/high: CARE-style "
            "PSNR/SSIM, the HF-error ratio and seconds per megapixel; for MSCGM also the "
            "consistency verdict and, with --samples, the uncertainty's coverage and "
            "Spearman correlation. Several --data folders are scored as separate sets (e.g. "
            "one per structure). Prints a table per set; writes metrics.csv and metrics.json."
        ),
    )
    parser.add_argument("--model", required=True, metavar="NAME|PATH", help="MSCGM model")
    parser.add_argument(
        "--data", required=True, nargs="+", metavar="DIR", help="folder(s) with low/ and high/"
    )
    parser.add_argument(
        "-o", "--output", default="mscgm-evaluation", metavar="DIR", help="results directory"
    )
    parser.add_argument("--care", default=None, metavar="PATH", help="CARE baseline weights")
    add_sampling_options(parser)
    parser.add_argument(
        "--samples",
        type=int,
        default=1,
        help="samples per restoration; above 1 the uncertainty "
        "is scored too (coverage of ±1.645 σ, Spearman of σ with the error)",
    )
    parser.add_argument(
        "--rl-iterations",
        type=int,
        default=None,
        help="Richardson-Lucy iterations (default: the tuned value, see docs)",
    )
    parser.add_argument(
        "--steps-sweep",
        default=None,
        metavar="N,N,...",
        help="also score MSCGM (PSNR, SSIM, HF error, sample std) at these step counts; "
        "writes steps.csv",
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pairs")
    add_device_option(parser)
    parser.set_defaults(func=run)


def _sets(model, args: argparse.Namespace) -> dict:
    from ..errors import InputError
    from ..training.datasets import read_pairs

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    sets = {}
    for folder in args.data:
        name = Path(folder).name or str(folder)
        if name in sets:
            raise InputError(f"two --data folders are both named {name!r}")
        sets[name] = read_pairs(folder, scale=model.scale)[: args.limit]
    return sets


def _steps_sweep(model, sets: dict, args: argparse.Namespace, eta: float, out: Path) -> None:
    """MSCGM at each step count of --steps-sweep: quality and sample diversity, steps.csv."""
    import numpy as np

    from .. import restore
    from ..errors import InputError
    from ..evaluation.metrics import care_metrics, hf_error_ratio, is_empty_field
    from ..evaluation.run import write_csv

    try:
        sweep = [int(s) for s in args.steps_sweep.split(",") if s.strip()]
    except ValueError:
        raise InputError(
            f"--steps-sweep must be integers like 2,5,10, got {args.steps_sweep!r}"
        ) from None
    if not sweep or min(sweep) < 1:
        raise InputError("--steps-sweep needs step counts of at least 1")
    pairs = [pair for pairs in sets.values() for pair in pairs]
    rows = []
    for n in sweep:
        scores = []
        for _, low, high in pairs:
            start = time.perf_counter()
            mean, std = restore(low, model, steps=n, seed=args.seed, eta=eta, axes="YX",
                                samples=4, consistency=False)  # fmt: skip
            seconds = (time.perf_counter() - start) / 4
            spread = float(np.mean(std) / max(float(np.ptp(mean)), 1e-12))
            quality = (
                (np.nan,) * 3  # an empty field: no quality to measure (as in the tables)
                if is_empty_field(high)
                else (*care_metrics(mean, high), hf_error_ratio(mean, high))
            )
            scores.append((*quality, spread, seconds))
        means = np.nanmean(np.array(scores), axis=0)
        rows.append(dict(zip(("steps", "psnr", "ssim", "hf_error", "sample_std", "seconds"),
                             (n, *map(float, means)), strict=True)))  # fmt: skip
        print(
            f"steps {n:>4}: PSNR {means[0]:.2f} dB  SSIM {means[1]:.3f}  HF-error {means[2]:.3f}  "
            f"sample std {means[3]:.4f} (of the range)  {means[4]:.3f} s/sample"
        )
    write_csv(out / "steps.csv", rows)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .. import load_model
    from ..errors import InputError
    from ..evaluation.protocol import RL_ITERATIONS, methods_for
    from ..evaluation.run import evaluate, write_results
    from ..model_io.weights import load_care

    model = load_model(args.model, device=args.device)
    sets = _sets(model, args)
    steps, eta = model.sampling(args.steps, args.eta)
    care = None
    if args.care:
        care = load_care(args.care)
        if care.config.scale != model.scale:
            raise InputError(
                f"{args.care}: CARE scale {care.config.scale} ≠ model scale {model.scale}"
            )
    if args.samples < 1:
        raise InputError(f"--samples must be at least 1, got {args.samples}")
    rl = RL_ITERATIONS if args.rl_iterations is None else args.rl_iterations
    methods = methods_for(model, steps=steps, eta=eta, seed=args.seed, samples=args.samples,
                          care=care, rl_iterations=rl)  # fmt: skip
    total = sum(len(p) for p in sets.values())
    with tqdm(total=total, disable=None, unit="image", leave=False) as bar:
        result = evaluate(sets, methods, progress=lambda done, total: bar.update(1))
    info = {
        "model": model.config.name, "model_sha256": model.sha256,
        "data": [str(d) for d in args.data], "pairs": {k: len(v) for k, v in sets.items()},
        "steps": steps, "seed": args.seed, "eta": eta, "samples": args.samples,
        "rl_iterations": rl, "care": args.care,
        "metrics": "GT percentiles 0.1/99.9 -> [0,1]; least-squares affine fit; skimage "
        "PSNR/SSIM, data_range=1; HF-error: DoG(0.7, 2.0) band energy of error / of GT",
    }  # fmt: skip
    out = Path(args.output)
    csv_path, json_path = write_results(result, out, info=info)
    for name, pairs in sets.items():
        print(f"{model.config.name} on {name} ({len(pairs)} pairs)")
        print(result.table(name))
    if args.steps_sweep:
        _steps_sweep(model, sets, args, eta, out)
    print(f"wrote {csv_path} and {json_path}")
    return 0
