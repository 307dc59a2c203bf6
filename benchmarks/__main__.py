"""``python -m benchmarks [NAME ...] [--quick] [--json PATH]``: run and print a Markdown table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import BENCHMARKS


def run(names: list[str], *, quick: bool = False) -> list[dict]:
    from . import bench_memory, bench_speedup, bench_throughput, bench_tiling
    from ._common import machine

    print(f"machine: {machine()}", file=sys.stderr)
    rows: list[dict] = []
    for name in names:
        print(f"running {name} …", file=sys.stderr, flush=True)
        if name == "speedup":
            rows += bench_speedup.run(size=256 if quick else 512, steps=20)
        elif name == "throughput":
            rows += bench_throughput.run(size=512 if quick else 2048)
        elif name == "tiling":
            rows += bench_tiling.run(size=512 if quick else 1024, steps=5 if quick else 20)
        elif name == "memory":
            sizes = [2, 8] if quick else [2, 8, 32]
            rows += bench_memory.run(sizes, Path("/tmp/napari-mscgm-bench"))
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
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    rows = run(args.names or list(BENCHMARKS), quick=args.quick)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
