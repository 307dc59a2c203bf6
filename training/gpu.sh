#!/usr/bin/env bash
# Everything one GPU session does, in one command of under 10 minutes on one H200:
#
#   here, once:  bash training/gpu_wheels.sh && bash training/evaluate.sh sets
#                (cp -r training/eval-data .gpu-data; echo /.gpu-data/ >> .git/info/exclude)
#   device tool: run(command="bash training/gpu.sh", carry=[".whl", ".gpu-data"], timeout_s=600)
#
# 1. the GPU check (training/gpu_check.py): CUDA equals CPU in float32 and bfloat16,
#    same seed same output, a real out-of-memory retried smaller, output MP/s;
# 2. the benchmarks on CUDA (speedup, throughput, training steps);
# 3. both generalists trained at once from their recipes, with --device cuda and
#    --batch-multiplier 8 (bf16 autocast as in the recipes, the same budget);
# 4. both evaluated on the per-structure held-out sets (no CARE: it trains on the CPU).
# What comes back in $OUT: the two weights files and results.tar.gz (JSON, CSV, logs).
# Bundle a GPU model only where its card beats the CPU-trained one:
#   cp <files_at>/fluo-sr2x.safetensors training/runs/ && bash training/evaluate.sh bundle ...
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-/tmp/gpu-out}"
WORK=/tmp/gpu-work
mkdir -p "$OUT" "$WORK/logs"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$WORK/logs/gpu.txt"
START=$SECONDS
stamp() { echo "[$((SECONDS - START)) s] $*" | tee -a "$WORK/logs/timeline.txt"; }

stamp "gpu check"
timeout 100 python3 training/gpu_check.py --out "$WORK" 2>&1 | tee "$WORK/logs/gpu_check.txt"

stamp "benchmarks on cuda"
timeout 50 python3 -m benchmarks speedup throughput training --device cuda --json "$WORK/bench.json" \
    2>&1 | tee "$WORK/logs/benchmarks-gpu.md"

stamp "training both generalists"
for model in fluo-sr2x fluo-denoise; do
    timeout 300 python3 -m napari_mscgm.cli train --config "training/$model.json" --device cuda \
        --batch-multiplier 8 --workers 7 -o "$WORK/$model.safetensors" \
        --log "$WORK/logs/$model.csv" > "$WORK/logs/train-$model.txt" 2>&1 &
done
wait
stamp "trained"

DATA="${EVAL_DATA:-$ROOT/.gpu-data}"
for model in fluo-sr2x fluo-denoise; do
    [ -f "$WORK/$model.safetensors" ] || continue
    task=sr
    [ "$model" = fluo-denoise ] && task=dn
    sets=()
    for c in beads filaments cells nuclei actin microtubules er mitochondria puncta membranes \
        tissue sparse; do sets+=("$DATA/$task/$c-low" "$DATA/$task/$c-high"); done
    [ -d "$DATA/$task" ] && timeout 40 python3 -m napari_mscgm.cli evaluate --model "$WORK/$model.safetensors" \
        --device cuda --data "${sets[@]}" -o "$WORK/eval-$model" > "$WORK/logs/eval-$model.txt" 2>&1
    cp "$WORK/$model.safetensors" "$OUT/"
done
stamp "done"
tar -czf "$OUT/results.tar.gz" -C "$WORK" logs $(cd "$WORK" && ls -d gpu_check.json bench.json \
    eval-* 2>/dev/null)
