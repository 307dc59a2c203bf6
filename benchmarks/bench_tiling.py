"""Tiled vs untiled: time overhead and agreement of the same image, side by side."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_mscgm import restore

from ._common import bundled_or_default, timed


def _psnr(a: np.ndarray, ref: np.ndarray) -> float:
    span = float(ref.max() - ref.min())
    return float(10 * np.log10(span**2 / np.mean((a.astype(np.float64) - ref) ** 2)))


def run(*, size: int = 1024, steps: int = 20, tiles: tuple[int, ...] = (256, 512)) -> list[dict]:
    model = bundled_or_default()
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.random((size, size)), 2) * 3000 + 200
    restore(image[:300, :300], model, steps=1)  # warm-up
    t_whole, whole = timed(lambda: restore(image, model, steps=steps, tile_size=None))
    rows = []
    for tile in tiles:
        t_tiled, tiled = timed(
            lambda tile=tile: restore(image, model, steps=steps, tile_size=tile, overlap=32)
        )
        rows.append(
            {
                "benchmark": "tiling",
                "model": model.config.name,
                "image": f"{size}x{size}",
                "steps": steps,
                "tile_size": tile,
                "overlap": 32,
                "untiled_s": round(t_whole, 1),
                "tiled_s": round(t_tiled, 1),
                "overhead": round(t_tiled / t_whole, 3),
                "psnr_vs_untiled_db": round(_psnr(tiled, whole), 1),
            }
        )
    return rows
