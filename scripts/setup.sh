#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: a project virtual
# environment in .venv with the CPU build of torch and napari-mscgm installed.
# Usage: source scripts/setup.sh [extras]   (e.g. "testing")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MSCGM_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${1:-}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PY" -m venv "$VENV"
fi
# torch is pinned to the CPU wheel: an unpinned torch pulls several GB of CUDA packages.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "[setup] installing torch==2.13.0"
    "$VENV/bin/python" -m pip install -q torch==2.13.0
fi
SPEC="$ROOT"
[ -n "$EXTRAS" ] && SPEC="$ROOT[$EXTRAS]"
STAMP="$VENV/.mscgm-installed-${EXTRAS:-core}"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    echo "[setup] installing napari-mscgm${EXTRAS:+[$EXTRAS]}"
    "$VENV/bin/python" -m pip install -q -e "$SPEC" 2>&1 | grep -v "is ignored" || true
    if [[ ",$EXTRAS," == *",testing,"* ]]; then
        # bioimageio.core 0.11 pins bioimageio.spec==0.5.12, which breaks under pydantic
        # 2.14; it works with the spec >= 0.5.14 that [testing] installs (its deps too).
        "$VENV/bin/python" -m pip install -q --no-deps bioimageio.core==0.11.0 2>&1 \
            | grep -v "is ignored" || true
    fi
    "$VENV/bin/python" -c "import napari_mscgm" && touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
