#!/usr/bin/env bash
# The evaluation protocol of the generalist models (docs/models/fluo-*.md), step by step:
#
#   bash training/evaluate.sh sets               # simulate the held-out sets (once)
#   bash training/evaluate.sh sweep MODEL        # steps sweep of training/runs/MODEL
#   bash training/evaluate.sh bundle MODEL STEPS # calibrate the std, install with STEPS
#   bash training/evaluate.sh score MODEL        # every table of the card, bundled MODEL
#   python training/model_card.py MODEL          # the card, from training/eval/MODEL*
#
# MODEL is fluo-sr2x or fluo-denoise. Held-out sets use seeds 9001+ (training used 11-13):
# one set per structure class at two SNRs (20-60 and 300-1000 peak photons) on the
# model's own optics, a 0.3 NA domain-shift set, and calibration sets drawn like the
# training data. Results go to training/eval/ (committed); the images to
# training/eval-data/ (not committed: this command remakes them bit for bit).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${EVAL_DATA:-$ROOT/training/eval-data}"
OUT="${EVAL_OUT:-$ROOT/training/eval}"
RUNS="$ROOT/training/runs"
N="${EVAL_N:-6}"
CLASSES="beads filaments cells nuclei actin microtubules er mitochondria puncta membranes tissue sparse"
LEFT_OUT="nuclei er"  # the classes fluo-sr2x-loso never saw (with cells and tissue)

simulate() {  # simulate DIR [napari-mscgm simulate options]: once
    local dir="$DATA/$1"
    shift
    [ -d "$dir/high" ] || napari-mscgm simulate --shape 256 -o "$dir" "$@"
}

sets_of() {  # the per-class folders of a task: sr or dn
    for c in $CLASSES; do printf '%s ' "$DATA/$1/$c-low" "$DATA/$1/$c-high"; done
}

task_of() { case "$1" in *denoise*) echo dn ;; *) echo sr ;; esac; }

care_option() {  # --care PATH when the equal-budget CARE baseline has been trained
    local care="$RUNS/$1-care.safetensors"
    if [ -f "$care" ]; then echo "--care $care"; else echo "note: no $care yet" >&2; fi
}

case "${1:?usage: bash training/evaluate.sh sets|sweep|bundle|score MODEL [STEPS]}" in
sets)
    mkdir -p "$DATA/sr" "$DATA/dn" "$DATA/shift" "$DATA/calib"
    for c in $CLASSES; do
        simulate "sr/$c-low" --preset "$c" --n "$N" --photons 20 60 --seed 9001
        simulate "sr/$c-high" --preset "$c" --n "$N" --photons 300 1000 --seed 9002
        simulate "dn/$c-low" --preset "$c" --n "$N" --photons 20 60 --seed 9003 --same-objective
        simulate "dn/$c-high" --preset "$c" --n "$N" --photons 300 1000 --seed 9004 \
            --same-objective
    done
    simulate shift/na0.3 --preset mixed --n 24 --photons 30 1000 --input-na 0.3 --seed 9005
    simulate calib/sr --preset fluo --n 24 --seed 9100
    simulate calib/dn --preset fluo-denoise --n 24 --seed 9101
    ;;
sweep)
    MODEL="${2:?MODEL}"
    # shellcheck disable=SC2046
    napari-mscgm evaluate --model "$RUNS/$MODEL.safetensors" --data $(sets_of "$(task_of "$MODEL")") \
        --limit 1 --steps-sweep 1,2,5,20 -o "$OUT/$MODEL-sweep"
    ;;
bundle)
    MODEL="${2:?MODEL}"
    STEPS="${3:?STEPS (from the sweep)}"
    napari-mscgm calibrate --model "$RUNS/$MODEL.safetensors" --data "$DATA/calib/$(task_of "$MODEL")" \
        --samples 8 -o "$RUNS/$MODEL.calibrated.safetensors"
    python "$ROOT/training/finalize.py" "$RUNS/$MODEL.calibrated.safetensors" --default-steps "$STEPS"
    ;;
score)
    MODEL="${2:?MODEL}"
    TASK="$(task_of "$MODEL")"
    # shellcheck disable=SC2046
    napari-mscgm evaluate --model "$MODEL" --data $(sets_of "$TASK") $(care_option "$MODEL") \
        -o "$OUT/$MODEL"
    # The calibrated std against the error, per class (8 samples, 2 images per set).
    # shellcheck disable=SC2046
    napari-mscgm evaluate --model "$MODEL" --data $(sets_of "$TASK") --samples 8 --limit 2 \
        -o "$OUT/$MODEL-uncertainty"
    if [ "$TASK" = sr ]; then
        napari-mscgm evaluate --model "$MODEL" --data "$DATA/shift/na0.3" $(care_option "$MODEL") \
            -o "$OUT/$MODEL-shift"
        if [ -f "$RUNS/$MODEL-loso.safetensors" ]; then
            left=()
            for c in $LEFT_OUT; do left+=("$DATA/sr/$c-low" "$DATA/sr/$c-high"); done
            napari-mscgm evaluate --model "$RUNS/$MODEL-loso.safetensors" --data "${left[@]}" \
                -o "$OUT/$MODEL-loso"
        fi
        # The specialists on every class: kept only where clearly better on their structure;
        # their verdicts on the other classes are the wrong-model guard's rates.
        for specialist in beads-sr2x cells-sr2x; do
            # shellcheck disable=SC2046
            napari-mscgm evaluate --model "$specialist" --data $(sets_of sr) -o "$OUT/$specialist"
        done
    fi
    ;;
*)
    echo "unknown step $1" >&2
    exit 2
    ;;
esac
