#!/usr/bin/env bash
# Train (or continue training) one model from its recipe, resumable at any time:
#   bash training/train.sh fluo-sr2x [extra 'napari-mscgm train' options, e.g. --threads 1]
# Weights, checkpoint and CSV log go to training/runs/<model>.*; running it again after an
# interruption continues from the checkpoint (same recipe; iteration counts may grow).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL="${1:?usage: bash training/train.sh MODEL [options]}"
shift
RUNS="$ROOT/training/runs"
mkdir -p "$RUNS"
OUT="$RUNS/$MODEL.safetensors"
RESUME=()
[ -f "$RUNS/$MODEL.checkpoint.safetensors" ] && RESUME=(--resume)
exec napari-mscgm train --config "$ROOT/training/$MODEL.json" -o "$OUT" \
    --log "$RUNS/$MODEL.csv" "${RESUME[@]}" "$@"
