"""The GPU check, run first on a GPU machine (CUDA has never run on hardware before it).

    python training/gpu_check.py --out DIR

1. restore on CUDA equals the CPU within float tolerance, in float32 and bfloat16;
2. the same seed gives the same output on CUDA, twice;
3. a real CUDA out-of-memory (one huge tile, a large batch) is retried with smaller
   batches and tiles, and the result matches an ordinary tiled run;
4. throughput in output megapixels per second at default settings.

Prints one line per check and writes DIR/gpu_check.json; exits 1 if a check fails.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from napari_mscgm import load_model, restore
from napari_mscgm.model_io.bundled import default_model
from napari_mscgm.samples import load_sample

parser = argparse.ArgumentParser()
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--model", default=None, help="bundled model (default: the default model)")
parser.add_argument("--device", default="cuda", help="cuda; cpu only to try this script out")
parser.add_argument("--small", action="store_true", help="small sizes, to try this script out")
args = parser.parse_args()
HUGE, FRAME = (512, 512) if args.small else (12288, 4096)
sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
args.out.mkdir(parents=True, exist_ok=True)
results: dict = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda")
                  else args.device, "torch": torch.__version__}  # fmt: skip
failed = []


def record(name: str, ok: bool, **values) -> None:
    results[name] = {"ok": bool(ok), **values}
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {values}", flush=True)
    if not ok:
        failed.append(name)


name = args.model or default_model()
cpu, gpu = load_model(name, device="cpu"), load_model(name, device=args.device)
image = load_sample("cells_low")[0]  # the bundled low-resolution cells sample
span = float(np.ptp(image))
kw = {"axes": "YX", "seed": 3, "consistency": False}

reference = restore(image, cpu, **kw)
for precision, tolerance in (("float32", 1e-3), ("bfloat16", 3e-2)):
    out = restore(image, gpu, precision=precision, **kw)
    error = float(np.max(np.abs(out - reference)) / max(float(np.ptp(reference)), 1e-12))
    record(f"cuda {precision} equals cpu", error <= tolerance, max_error_of_range=error,
           tolerance=tolerance)  # fmt: skip

first = restore(image, gpu, **kw)
second = restore(image, gpu, **kw)
record("same seed, same output on cuda", np.array_equal(first, second),
       max_difference=float(np.max(np.abs(first - second))))  # fmt: skip

# A real out-of-memory: a 12288² input in one tile asks for far more than the card
# holds; the run must retry with smaller tiles (and batches) and finish.
huge = np.random.default_rng(0).integers(100, 4000, (HUGE, HUGE)).astype(np.uint16)
start = time.perf_counter()
try:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        big, meta = restore(huge, gpu, tile_size=HUGE, batch_size=8, return_metadata=True, **kw)
    retries = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    side = min(2048, HUGE // 2)
    corner = restore(huge[:side, :side], gpu, **kw)
    interior = (
        slice(128, 2 * side - 128),
        slice(128, 2 * side - 128),
    )  # away from the corner crop's own edge
    agree = float(np.max(np.abs(big[interior] - corner[interior]))) / max(
        float(np.ptp(corner)), 1e-12
    )
    record("cuda out-of-memory is retried smaller",
           bool(retries) and meta["tile_size"] < HUGE and bool(np.isfinite(big).all()),
           retries=retries, tile_size_used=meta["tile_size"],
           seconds=round(time.perf_counter() - start, 1), difference_of_range=agree)  # fmt: skip
except Exception as exc:  # the check itself must report, not crash
    record("cuda out-of-memory is retried smaller", False, error=f"{type(exc).__name__}: {exc}")
if args.device.startswith("cuda"):
    torch.cuda.empty_cache()

frame = np.random.default_rng(1).integers(100, 4000, (FRAME, FRAME)).astype(np.uint16)
restore(frame[:512, :512], gpu)  # warm-up
for precision in ("float32", "bfloat16"):
    sync()
    start = time.perf_counter()
    out = restore(frame, gpu, precision=precision)
    sync()
    seconds = time.perf_counter() - start
    mp_s = out.size / seconds / 1e6
    record(f"throughput {precision}", True, input=f"{FRAME}x{FRAME} uint16",
           output="x".join(map(str, out.shape)), seconds=round(seconds, 2),
           output_mp_per_s=round(mp_s, 1), goal_mp_per_s=50, meets_goal=mp_s >= 50)  # fmt: skip

(args.out / "gpu_check.json").write_text(json.dumps(results, indent=1))
sys.exit(1 if failed else 0)
