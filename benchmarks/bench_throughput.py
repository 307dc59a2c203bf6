"""Throughput of ``restore`` in megapixels per second at default settings.

A 2048² uint16 image through the default bundled model (scale 2, S = 2, its default
steps; tile 256, overlap 32, batch 4, float32) on ``device``.
"""

from __future__ import annotations

import numpy as np

from napari_mscgm import restore

from ._common import bundled_or_default, timed


def run(*, size: int = 2048, device: str = "cpu") -> list[dict]:
    model = bundled_or_default(device=device)
    image = np.random.default_rng(0).integers(100, 4000, (size, size)).astype(np.uint16)
    restore(image[:300, :300], model, steps=1)  # warm-up
    seconds, out = timed(lambda: restore(image, model))
    return [
        {
            "benchmark": "throughput",
            "model": model.config.name,
            "input": f"{size}x{size} uint16",
            "output": "x".join(map(str, out.shape)),
            "steps": model.config.bbdp.default_steps,
            "device": str(model.device),
            "seconds": round(seconds, 1),
            "input_mp_per_s": round(size * size / seconds / 1e6, 4),
            "output_mp_per_s": round(out.size / seconds / 1e6, 4),
        }
    ]
