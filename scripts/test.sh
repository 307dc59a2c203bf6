#!/usr/bin/env bash
# Set up everything on a fresh machine (system packages, .venv, the project with
# its test extras), then run the test suite. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/system-deps.sh"
source "$ROOT/scripts/setup.sh" testing
cd "$ROOT"
# pytest-xvfb starts a virtual display for the napari/Qt tests.
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "[test] pytest collected no tests: failing" >&2
    exit 1
fi
exit "$rc"
