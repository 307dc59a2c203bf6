"""``python -m benchmarks [NAME ...] [--quick] [--json PATH]``: run and print a Markdown table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import BENCHMARKS

#: Stack sizes (planes of 4096² uint16, 33.5 MB each) of the memory benchmark; 240 is 8.05 GB.
MEMORY_PLANES = (16, 64, 240)
QUICK_MEMORY_PLANES = (2, 8)


def run(
    names: list[str],
    *,
    quick: bool = False,
    planes: list[int] | None = None,
    memory_model: str = "passthrough",
    workdir: Path = Path("/tmp/napari-mscgm-bench"),
    plane: int = 4096,
    tile: int = 512,
    device: str = "cpu",
) -> list[dict]:
    from . import (
        bench_consistency,
        bench_finetune,
        bench_memory,
        bench_speedup,
        bench_throughput,
        bench_tiling,
        bench_training,
    )
    from ._common import machine

    print(f"machine: {machine()}", file=sys.stderr)
    rows: list[dict] = []
    for name in names:
        print(f"running {name} …", file=sys.stderr, flush=True)
        if name == "speedup":
            rows += bench_speedup.run(size=256 if quick else 512, steps=20, device=device)
        elif name == "throughput":
            rows += bench_throughput.run(size=512 if quick else 2048, device=device)
        elif name == "tiling":
            rows += bench_tiling.run(size=512 if quick else 1024, steps=5 if quick else 20)
        elif name == "consistency":
            rows += bench_consistency.run(size=256 if quick else 1024, repeats=1 if quick else 3)
        elif name == "training":
            rows += bench_training.run(
                steps=2 if quick else 20, pairs=4 if quick else 64, device=device
            )
        elif name == "finetune":
            rows += bench_finetune.run(
                pairs=16 if quick else None, bridge=10 if quick else None,
                generators=20 if quick else None, device=device,
            )  # fmt: skip
        elif name == "memory":
            sizes = planes or list(QUICK_MEMORY_PLANES if quick else MEMORY_PLANES)
            rows += bench_memory.run(sizes, workdir, tile=tile, model=memory_model, plane=plane)
    return rows


def markdown(rows: list[dict]) -> str:
    out = []
    for name in dict.fromkeys(r["benchmark"] for r in rows):
        part = [r for r in rows if r["benchmark"] == name]
        keys = list(dict.fromkeys(k for r in part for k in r if k != "benchmark"))
        out.append(f"### {name}\n")
        out.append("| " + " | ".join(keys) + " |")
        out.append("|" + "---|" * len(keys))
        for r in part:
            out.append("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--device", default="cpu", help="speedup, throughput, training: cpu or cuda (default cpu)"
    )
    parser.add_argument(
        "--planes",
        type=int,
        nargs="+",
        default=None,
        help="memory: stack sizes in planes (default 16 64 240; 240 of 4096² uint16 = 8 GB)",
    )
    parser.add_argument(
        "--memory-model",
        choices=["passthrough", "micro", "default"],
        default="passthrough",
        help="memory: passthrough (the pipeline without networks; default), micro (the smallest "
        "real networks) or default (the bundled default-architecture model, for small planes)",
    )
    parser.add_argument(
        "--plane", type=int, default=4096, help="memory: Y = X of every plane (default 4096)"
    )
    parser.add_argument(
        "--tile", type=int, default=512, help="memory: tile_size of the restoration (default 512)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/tmp/napari-mscgm-bench"),
        help="memory: where the stacks are written (and deleted afterwards)",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    rows = run(
        args.names or list(BENCHMARKS),
        quick=args.quick,
        planes=args.planes,
        memory_model=args.memory_model,
        workdir=args.workdir,
        plane=args.plane,
        tile=args.tile,
        device=args.device,
    )
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
