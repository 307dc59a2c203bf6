#!/usr/bin/env bash
# Debian packages for a virtual display (Xvfb + Mesa GL) and Qt 6's xcb platform,
# so that the napari/Qt tests run headless. Installs only what is missing; needs root.
set -euo pipefail
PKGS="xvfb xauth libgl1-mesa-dri libegl1 libgl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
      libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0
      libxcb-xinerama0 libxcb-xinput0 libxcb-xfixes0 libdbus-1-3 libfontconfig1 libglib2.0-0"
missing=()
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "[system] need root to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
fi
echo "[system] installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
