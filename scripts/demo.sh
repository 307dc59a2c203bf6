#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, restore the bundled bead sample
# (10x/0.4 NA, 0.65 um pixels) with the bundled generalist fluo-sr2x into
# mscgm_demo/beads_mscgm.ome.tif, and score input and result against the ground truth.
# Usage: bash scripts/demo.sh [extra 'napari-mscgm restore' options, e.g. --steps 50 --seed 3]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
OUT="${MSCGM_DEMO_DIR:-$PWD/mscgm_demo}"
mkdir -p "$OUT"
INPUT="$(python -c 'from napari_mscgm.samples import sample_path; print(sample_path("beads_low"))')"
set -x
napari-mscgm restore "$INPUT" -o "$OUT/beads_mscgm.ome.tif" --model fluo-sr2x --seed 0 \
    --overwrite "$@"
{ set +x; } 2>/dev/null
python - "$OUT/beads_mscgm.ome.tif" <<'PY'
import sys

from napari_mscgm.evaluation.baselines import bicubic
from napari_mscgm.evaluation.metrics import care_metrics
from napari_mscgm.io import read_image, read_run_metadata
from napari_mscgm.samples import load_sample

low, low_px = load_sample("beads_low")
high, high_px = load_sample("beads_high")
result = read_image(sys.argv[1])
restored = result.data.compute().reshape(result.data.shape[-2:])
meta = read_run_metadata(sys.argv[1])
print(f"wrote {sys.argv[1]}: {restored.shape[1]}x{restored.shape[0]} px at "
      f"{result.pixel_size_um[2]:.4g} um (input {low.shape[1]}x{low.shape[0]} at {low_px[1]:.4g} um)")
print(f"model {meta['model']}, steps {meta['steps']}, seed {meta['seed']}")
print("against the noise-free 20x/0.75 NA ground truth (CARE-style PSNR / SSIM):")
for name, image in (("bicubic input", bicubic(low, scale=2)), ("MSCGM", restored)):
    psnr, ssim = care_metrics(image, high)
    print(f"  {name:14s} {psnr:6.2f} dB   SSIM {ssim:.3f}")
PY
