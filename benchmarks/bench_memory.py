"""Peak resident memory (RSS) of streaming restoration vs stack size.

Each size runs in a fresh subprocess (``ru_maxrss`` is a process-lifetime peak)
that restores a uint16 OME-Zarr-sized stack from a Zarr array on disk into an
OME-Zarr on disk with ``restore(..., out=...)``. The model is the smallest one
(scale 1, 4-channel networks, 1 step): the networks' arithmetic is not what is
measured, the pipeline's memory is (tiles, blending, reading, writing, graph).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PLANE = 4096  # Y = X of every plane
CHUNK = 1024  # input Zarr chunk edge


def make_stack(path: Path, planes: int) -> float:
    """A ``(planes, 4096, 4096)`` uint16 Zarr of noise (incompressible: its size on disk is real)."""
    import zarr

    array = zarr.open_array(
        str(path),
        mode="w",
        shape=(planes, PLANE, PLANE),
        chunks=(1, CHUNK, CHUNK),
        dtype="u2",
        zarr_format=2,
        compressor=None,
    )
    rng = np.random.default_rng(0)
    block = rng.integers(100, 4000, size=(PLANE, PLANE), dtype=np.uint16)
    for z in range(planes):
        array[z] = np.roll(block, z * 7, axis=1)  # different planes, cheap to make
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


def child(source: str, out: str, tile: int, model_kind: str) -> None:
    import zarr

    from benchmarks._common import micro_model, passthrough_model
    from napari_mscgm import restore

    model = micro_model() if model_kind == "micro" else passthrough_model()
    if os.environ.get("MSCGM_MAX_TASKS"):  # to study the slab size
        from napari_mscgm import pipeline

        pipeline.MAX_TASKS_PER_GRAPH = int(os.environ["MSCGM_MAX_TASKS"])
    start = time.perf_counter()
    restore(
        zarr.open_array(source, mode="r"),
        model,
        axes="ZYX",
        steps=1,
        tile_size=tile,
        overlap=32,
        batch_size=4,
        out=out,
    )
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"peak_rss_mb": peak_mb, "wall_s": wall}))


def run(sizes: list[int], workdir: Path, tile: int = 512, model: str = "passthrough") -> list[dict]:
    """Peak RSS for stacks of ``sizes`` planes of 4096², each in a fresh process."""
    rows = []
    workdir.mkdir(parents=True, exist_ok=True)
    for planes in sizes:
        source, out = workdir / f"in_{planes}.zarr", workdir / f"out_{planes}.zarr"
        gb = make_stack(source, planes)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_memory",
                "--child",
                str(source),
                str(out),
                "--tile",
                str(tile),
                "--model",
                model,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        out_gb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e9
        rows.append(
            {
                "benchmark": "memory",
                "model": model,
                "planes": planes,
                "input_gb": gb,
                "output_gb": out_gb,
                **result,
            }
        )
        shutil.rmtree(source)
        shutil.rmtree(out)
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "OUT"))
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--model", choices=["passthrough", "micro"], default="passthrough")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/napari-mscgm-bench"))
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.tile, args.model)
    else:
        print(json.dumps(run(args.sizes, args.workdir, args.tile, args.model), indent=1))
