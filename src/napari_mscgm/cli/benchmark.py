"""``napari-mscgm benchmark``: run the benchmarks of a source checkout (``benchmarks/``)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

ORDER = 60
NAMES = ("speedup", "throughput", "tiling", "memory", "consistency", "training")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="measure speed-up, throughput, tiling overhead and memory",
        description=(
            "Run the benchmarks in the benchmarks/ folder of a napari-mscgm source checkout "
            "(same as 'python -m benchmarks'). Each prints ratios measured side by side in "
            "one run, as a Markdown table. See docs/benchmarks.md."
        ),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)}")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--planes",
        type=int,
        nargs="+",
        default=None,
        help="memory: stack sizes in 4096² uint16 planes (default 16 64 240; 240 = 8 GB on disk)",
    )
    parser.add_argument(
        "--memory-model",
        choices=["passthrough", "micro", "default"],
        default="passthrough",
        help="memory: passthrough (pipeline only, default), micro (smallest real networks) or "
        "default (the bundled default-architecture model, for small --plane sizes)",
    )
    parser.add_argument("--plane", type=int, default=None, help="memory: Y = X of every plane")
    parser.add_argument("--tile", type=int, default=None, help="memory: tile size")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="memory: where the test stacks are written and deleted (default /tmp/...)",
    )
    parser.set_defaults(func=run)


def _benchmarks_module():
    from ..errors import InputError

    try:
        return importlib.import_module("benchmarks.__main__")
    except ImportError:
        pass
    # A source checkout: src/napari_mscgm/cli/benchmark.py -> <root>/benchmarks
    root = Path(__file__).resolve().parents[3]
    if (root / "benchmarks" / "__main__.py").is_file():
        sys.path.insert(0, str(root))
        return importlib.import_module("benchmarks.__main__")
    raise InputError(
        "the benchmarks are not installed with the package; run this from a source checkout "
        "of napari-mscgm (they live in its benchmarks/ folder)"
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError

    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        raise InputError(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}"
        )
    argv = [*args.names, *(["--quick"] if args.quick else [])]
    if args.json is not None:
        argv += ["--json", str(args.json)]
    if args.threads is not None:
        argv += ["--threads", str(args.threads)]
    if args.planes:
        argv += ["--planes", *map(str, args.planes)]
    argv += ["--memory-model", args.memory_model]
    for option in ("plane", "tile"):
        if getattr(args, option) is not None:
            argv += [f"--{option}", str(getattr(args, option))]
    if args.workdir is not None:
        argv += ["--workdir", str(args.workdir)]
    return _benchmarks_module().main(argv)
