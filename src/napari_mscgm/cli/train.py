"""``napari-mscgm train``: train (or fine-tune) a model from a preset or a recipe file."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ._microscope import add_microscope_options, run_for_microscope
from ._options import add_device_option

ORDER = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune a model on simulated or your own paired images",
        description=(
            "Train MSCGM in two stages (the Brownian bridge on LL_S, then the per-scale "
            "detail generators), or the CARE-like baseline with --baseline care. Data come "
            "from a simulator preset (--preset) or a folder with low/ and high/ images matched "
            "by file name (--data). Writes EMA weights as .safetensors, a resumable checkpoint "
            "beside them and a CSV log of the validation PSNR/SSIM. With --for-microscope, "
            "simulates pairs for your optics and fine-tunes the closest bundled generalist "
            "into the user model folder."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--preset",
        default=None,
        help="simulator preset(s): beads, filaments, cells, mixed, or e.g. cells+filaments",
    )
    source.add_argument("--data", default=None, metavar="DIR", help="folder with low/ and high/")
    parser.add_argument("--config", default=None, metavar="JSON", help="a TrainConfig recipe file")
    parser.add_argument(
        "-o", "--output", required=True,
        help="output .safetensors file (--for-microscope: a model name)",
    )  # fmt: skip
    parser.add_argument("--name", default=None, help="model name (default: the output's stem)")
    parser.add_argument("--baseline", choices=["mscgm", "care"], default=None)
    parser.add_argument(
        "--init", default=None, metavar="NAME|PATH", help="fine-tune from this model"
    )
    parser.add_argument("--bridge-iterations", type=int, default=None)
    parser.add_argument("--generator-iterations", type=int, default=None)
    parser.add_argument("--care-iterations", type=int, default=None)
    parser.add_argument("--n", type=int, default=None, help="simulated pairs")
    parser.add_argument(
        "--workers", type=int, default=None, help="processes that simulate the pairs"
    )
    parser.add_argument("--crop", type=int, default=None, help="training crop on the target grid")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--batch-multiplier", type=int, default=1, metavar="K",
        help="K times larger batches with the recipe's budget: iterations / K, learning "
        "rates x sqrt(K) (for a GPU: --device cuda --batch-multiplier 8)",
    )  # fmt: skip
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue an interrupted run (from OUTPUT's checkpoint, or this file)",
    )
    parser.add_argument("--log", default=None, help="CSV log (default: OUTPUT with .csv)")
    add_device_option(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    add_microscope_options(parser)
    parser.set_defaults(func=run)


def _read_recipe(path: Path) -> dict:
    import json

    from ..errors import InputError

    if not path.is_file():
        raise InputError(f"{path}: no such recipe file")
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: the recipe must be a JSON object")
    return document


def _recipe(args: argparse.Namespace):
    from ..config import CARETrainConfig, MSCGMTrainConfig, parse_train_config
    from ..config.train import with_batch_multiplier

    document: dict = _read_recipe(Path(args.config)) if args.config else {}
    data = dict(document.get("data", {}))
    if args.preset:
        data.update(source="simulated", preset=args.preset)
    if args.data:
        data.update(source="folder", path=args.data)
    if args.n is not None:
        data["n"] = args.n
    if args.workers is not None:
        data["workers"] = args.workers
    document["data"] = data
    if args.name or "name" not in document:
        document["name"] = args.name or Path(args.output).name.removesuffix(".safetensors")
    if args.baseline:
        document["algorithm"] = args.baseline
    if args.seed is not None:
        document["seed"] = args.seed
    if args.crop is not None:
        document["crop"] = args.crop
    defaults = CARETrainConfig() if document.get("algorithm") == "care" else MSCGMTrainConfig()
    for flag, key in (
        ("bridge_iterations", "bridge"),
        ("generator_iterations", "generators"),
        ("care_iterations", "care"),
    ):
        value = getattr(args, flag)
        if value is not None:
            stage = document.get(key) or getattr(defaults, key, None)
            stage = stage.model_dump() if hasattr(stage, "model_dump") else dict(stage or {})
            document[key] = {**stage, "iterations": value}
    return with_batch_multiplier(parse_train_config(document), args.batch_multiplier)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..training.loop import train

    # Record the command only when it is one (not when main() is called from Python).
    invoked = Path(sys.argv[0]).name in ("napari-mscgm", "__main__.py")
    command = "napari-mscgm " + shlex.join(sys.argv[1:]) if invoked else "napari-mscgm train"
    if args.for_microscope:
        if args.data or args.preset or args.config or args.init or args.resume:
            raise InputError("--for-microscope simulates its own data and picks the generalist; "
                             "leave out --preset, --data, --config, --init and --resume")  # fmt: skip
        return run_for_microscope(args, command)
    if args.data is None and args.preset is None and args.config is None:
        raise InputError("say what to train on: --preset NAME, --data DIR or --config FILE")
    config = _recipe(args)
    output = Path(args.output)
    log = Path(args.log) if args.log else output.with_suffix(".csv")
    result = train(
        config,
        output,
        device=args.device,
        resume=args.resume,
        init=args.init,
        log=log,
        command=command,
        threads=args.threads,
    )
    last = result.history[-1] if result.history else {}
    print(
        f"{result.path}: {result.iterations} iterations in {result.wall_time_s:.0f} s"
        + (
            f"; validation PSNR {float(last['val_psnr']):.2f} dB, SSIM {float(last['val_ssim']):.3f}"
            if last
            else ""
        )
    )
    return 0
