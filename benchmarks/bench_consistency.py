"""What the consistency check adds to a default restoration, as a ratio measured in one run.

The same image through ``restore`` with the check (the default) and without
(``consistency=False``), alternating, several repeats; the ratio of the medians.
"""

from __future__ import annotations

import time

import numpy as np

from napari_mscgm import restore

from ._common import bundled_or_default


def run(*, size: int = 1024, repeats: int = 3, name: str = "fluo-sr2x") -> list[dict]:
    model = bundled_or_default(name)
    image = np.random.default_rng(0).integers(100, 4000, (size, size)).astype(np.uint16)
    restore(image[:256, :256], model)  # warm-up
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for checked in (False, True):
            start = time.perf_counter()
            restore(image, model, consistency=checked)
            times[checked].append(time.perf_counter() - start)
    without, with_check = float(np.median(times[False])), float(np.median(times[True]))
    return [
        {
            "benchmark": "consistency",
            "model": model.config.name,
            "input": f"{size}x{size} uint16",
            "repeats": repeats,
            "restore_s": round(without, 2),
            "restore_and_check_s": round(with_check, 2),
            "check_s": round(with_check - without, 3),
            "added": f"{100 * (with_check / without - 1):.1f} %",
        }
    ]
