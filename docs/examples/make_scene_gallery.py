"""Render a picture of every simulator scene class for docs/simulator.md.

For each class, the noise-free target image of one simulated pair
(``simulate_pair(preset_config(name), shape=256, rng=SEED).high``, 20×/0.75 NA,
0.325 µm pixels: an 83 µm field) is shown with percentile contrast, saved as
``docs/images/scenes/<name>.png`` and tiled with titles into
``docs/images/scenes/gallery.png``.

Run from the repository root::

    python docs/examples/make_scene_gallery.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from napari_mscgm.simulate import MIXED_SCENES, preset_config, simulate_pair

OUT = Path(__file__).resolve().parents[1] / "images" / "scenes"
#: The concrete classes and the composite; ``mixed`` is one of them at random.
CLASSES: tuple[str, ...] = (*MIXED_SCENES, "composite")
SEED = 3
SIZE = 256  # target pixels
COLUMNS = 5
TITLE_PX = 22


def contrast(image: np.ndarray, low: float = 0.5, high: float = 99.8) -> np.ndarray:
    """8-bit image stretched between two percentiles (the maximum for sparse fields)."""
    lo, hi = np.percentile(image, [low, high])
    if hi <= lo:
        hi = image.max()
    scaled = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def render(name: str) -> np.ndarray:
    """The first non-empty target image from SEED on (an empty sparse field shows nothing)."""
    seed = SEED
    while True:
        high = simulate_pair(preset_config(name), shape=SIZE, rng=seed).high
        if high.max() > 0:
            return contrast(high)
        seed += 1


def title_font(size: int = 16) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = -(-len(CLASSES) // COLUMNS)
    gallery = Image.new("L", (COLUMNS * (SIZE + 4), rows * (SIZE + TITLE_PX + 4)), 255)
    draw, font = ImageDraw.Draw(gallery), title_font()
    for index, name in enumerate(CLASSES):
        tile = Image.fromarray(render(name))
        tile.save(OUT / f"{name}.png", optimize=True)
        x = (index % COLUMNS) * (SIZE + 4) + 2
        y = (index // COLUMNS) * (SIZE + TITLE_PX + 4) + 2
        draw.text((x + 4, y + 2), name, fill=0, font=font)
        gallery.paste(tile, (x, y + TITLE_PX))
        print(f"{name}: {(OUT / f'{name}.png').stat().st_size / 1024:.1f} kB")
    gallery.save(OUT / "gallery.png", optimize=True)
    print(f"gallery: {(OUT / 'gallery.png').stat().st_size / 1024:.1f} kB")


if __name__ == "__main__":
    main()
