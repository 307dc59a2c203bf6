#!/usr/bin/env bash
# Download, here, the wheels the GPU machine's image lacks (it has torch, numpy, scipy,
# scikit-image, tifffile, safetensors, tqdm, xarray, ... but not these), for its
# Python 3.12, at the versions of this checkout's .venv, into .whl/ (git-ignored via
# .git/info/exclude). training/gpu.sh installs them there with --no-index --no-deps.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
PACKAGES="pydantic pydantic_core annotated-types typing-inspection pydantic-extra-types PyWavelets
dask partd locket zict tblib distributed zarr numcodecs donfig google-crc32c bioio bioio-base
bioio-ome-tiff bioio-tifffile bioio-ome-zarr ome-types xsdata xsdata-pydantic-basemodel
xmlschema elementpath pint flexcache flexparser semver lazy-loader"
for name in $PACKAGES; do
    version="$(.venv/bin/pip show "$name" 2>/dev/null | sed -n "s/^Version: //p" || true)"
    [ -n "$version" ] || { echo "skip $name (not in .venv)"; continue; }
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "$name==$version" \
        || python3 -m pip download -q --no-deps -d .whl "$name==$version"
done
du -sh .whl
