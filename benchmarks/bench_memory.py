"""Peak resident memory (RSS) of streaming restoration vs stack size.

Each size runs in a fresh subprocess (``ru_maxrss`` is a process-lifetime peak)
that restores a uint16 OME-Zarr-sized stack from a Zarr array on disk into an
OME-Zarr on disk with ``restore(..., out=...)``. By default the model is
:class:`~benchmarks._common.PassthroughModel` (``sample`` returns its input):
what is measured is the pipeline's memory (reading, tiling, blending, graph,
writing), over stacks far too large to push through real networks on a CPU in
minutes; ``--model micro`` runs the smallest real networks (scale 1, 4-channel
U-Net and generator, 1 step) instead, and ``--model default`` the bundled
``beads-sr2x`` model (default architecture, scale 2; 1 step, as the activation
memory does not depend on the number of steps) on small planes. The networks add a per-forward-pass amount
(``batch_size`` tiles of activations) that does not depend on the stack size.

Besides the process-lifetime peak (``ru_maxrss``), a sampler thread records the
RSS every 0.2 s against the fraction of forward passes done, so the peak of the
first and of the second half of the run can be compared: memory that grew with
the data processed would peak later.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

PLANE = 4096  # Y = X of every plane
CHUNK = 1024  # input Zarr chunk edge


def make_stack(path: Path, planes: int, plane: int = PLANE) -> float:
    """A ``(planes, plane, plane)`` uint16 Zarr of noise (incompressible: its size on disk is real).

    Returns its size on disk in GB.
    """
    import zarr

    array = zarr.open_array(
        str(path),
        mode="w",
        shape=(planes, plane, plane),
        chunks=(1, CHUNK, CHUNK),
        dtype="u2",
        zarr_format=2,
        compressor=None,
    )
    rng = np.random.default_rng(0)
    block = rng.integers(100, 4000, size=(plane, plane), dtype=np.uint16)
    for z in range(planes):
        array[z] = np.roll(block, z * 7, axis=1)  # different planes, cheap to make
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


def _rss_mb() -> float:
    """Current resident set size of this process in MB (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler(threading.Thread):
    """Samples the RSS every ``interval`` seconds, tagged with the fraction of work done."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval, self.fraction = interval, 0.0
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def progress(self, done: int, total: int) -> None:
        self.fraction = done / max(total, 1)

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((self.fraction, _rss_mb()))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.samples.append((self.fraction, _rss_mb()))

    def peak(self, lo: float, hi: float) -> float:
        values = [rss for f, rss in self.samples if lo <= f < hi or (hi >= 1.0 and f >= 1.0)]
        return round(max(values), 1) if values else float("nan")


def child(source: str, out: str, tile: int, model_kind: str, threads: int | None) -> None:
    import torch
    import zarr

    from benchmarks._common import bundled_or_default, micro_model, passthrough_model
    from napari_mscgm import restore

    if threads:
        torch.set_num_threads(threads)
    models = {"micro": micro_model, "passthrough": passthrough_model, "default": bundled_or_default}
    model = models[model_kind]()
    if os.environ.get("MSCGM_MAX_TILES"):  # to study the slab size
        from napari_mscgm.restoration import write

        write.MAX_TILES_PER_GRAPH = int(os.environ["MSCGM_MAX_TILES"])
    baseline = _rss_mb()  # interpreter + torch + model, before any pixel is read
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    try:
        restore(
            zarr.open_array(source, mode="r"),
            model,
            axes="ZYX",
            steps=1,
            tile_size=tile,
            overlap=32,
            batch_size=4,
            out=out,
            progress=sampler.progress,
        )
    finally:
        sampler.stop()
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(
        json.dumps(
            {
                "rss_before_mb": round(baseline, 1),
                "peak_before_mb": round(peak_before, 1),  # imports, model building
                "peak_rss_mb": round(peak_mb, 1),
                # If memory grew with the data processed, the later part would peak higher.
                "peak_first_half_mb": sampler.peak(0.0, 0.5),
                "peak_second_half_mb": sampler.peak(0.5, 1.0),
                "wall_s": round(wall, 1),
            }
        )
    )


def run(
    sizes: list[int],
    workdir: Path,
    tile: int = 512,
    model: str = "passthrough",
    threads: int | None = None,
    plane: int = PLANE,
) -> list[dict]:
    """Peak RSS for stacks of ``sizes`` planes of ``plane``², each in a fresh process.

    The stacks and results are written under ``workdir`` and deleted after each size.
    """
    import torch

    rows = []
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    threads = threads or torch.get_num_threads()
    for planes in sizes:
        source, out = workdir / f"in_{planes}.zarr", workdir / f"out_{planes}.zarr"
        made = time.perf_counter()
        gb = make_stack(source, planes, plane)
        print(
            f"memory: wrote {planes} planes ({gb:.2f} GB) in {time.perf_counter() - made:.0f} s",
            file=sys.stderr,
            flush=True,
        )
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
                "--threads",
                str(threads),
            ],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],  # the checkout holding benchmarks/
        )
        if proc.returncode != 0:
            shutil.rmtree(source, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
            raise RuntimeError(f"memory benchmark child failed:\n{proc.stderr[-4000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        out_gb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e9
        rows.append(
            {
                "benchmark": "memory",
                "model": model,
                "planes": f"{planes} x {plane}x{plane}",
                "input_gb": float(f"{gb:.3g}"),
                "output_gb": float(f"{out_gb:.3g}"),
                "tile": tile,
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
    parser.add_argument(
        "--model", choices=["passthrough", "micro", "default"], default="passthrough"
    )
    parser.add_argument("--plane", type=int, default=PLANE, help="Y = X of every plane")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 240])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/napari-mscgm-bench"))
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.tile, args.model, args.threads)
    else:
        rows = run(args.sizes, args.workdir, args.tile, args.model, args.threads, args.plane)
        print(json.dumps(rows, indent=1))
