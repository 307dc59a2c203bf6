"""npe2 sample data: simulated degraded fields with their ground truth, in µm.

The pairs are the package's bundled samples (:mod:`napari_mscgm.samples`), made by
the simulator (:mod:`napari_mscgm.simulate`) with a fixed seed, so napari, the
docs and the command line all show the same data, and opening is instant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["beads_sample", "cells_sample", "sample_layers"]


def sample_layers(kind: str) -> list[tuple[Any, dict, str]]:
    """The degraded image and its ground truth as napari layer data tuples.

    Parameters
    ----------
    kind : {"beads", "cells"}
        The simulated scene.

    Returns
    -------
    list of (data, kwargs, "image")
        ``"<kind> (degraded)"`` in camera units (ADU) with the input pixel size,
        and ``"<kind> (ground truth)"`` (noise-free photons) on the finer target
        grid, placed so that pixel centres overlay, like restored layers.
    """
    from ..samples import SAMPLE_MODELS, SAMPLE_SEEDS, load_sample

    degraded, (low_px, _) = load_sample(f"{kind}_low")
    truth, (high_px, _) = load_sample(f"{kind}_high")
    # The simulator's pixel i covers [i, i + 1) * size, napari centres pixel i at
    # translate + i * scale: with the degraded layer at 0, the first fine centre
    # lies half a coarse pixel before it, plus half a fine pixel.
    offset = -(low_px - high_px) / 2
    seed, peak = SAMPLE_SEEDS[kind]
    metadata = {
        "napari-mscgm-sample": {
            "scene": kind,
            "model": SAMPLE_MODELS[kind],  # what the Restore widget picks for it
            "simulator_seed": seed,
            "input_peak_photons": peak,
            "input_pixel_size_um": low_px,
            "target_pixel_size_um": high_px,
        }
    }
    common = {"units": "µm", "colormap": "gray", "metadata": metadata}
    return [
        (
            degraded.astype(np.float32, copy=False),
            {
                "name": f"{kind} (degraded)",
                "scale": (low_px, low_px),
                "contrast_limits": _limits(degraded),
                **common,
            },
            "image",
        ),
        (
            truth.astype(np.float32, copy=False),
            {
                "name": f"{kind} (ground truth)",
                "scale": (high_px, high_px),
                "translate": (offset, offset),
                "contrast_limits": _limits(truth),
                "visible": False,  # shown on demand, to compare with the restoration
                **common,
            },
            "image",
        ),
    ]


def beads_sample() -> list[tuple[Any, dict, str]]:
    """A degraded field of sub-resolution fluorescent beads and its ground truth."""
    return sample_layers("beads")


def cells_sample() -> list[tuple[Any, dict, str]]:
    """A degraded field of cells (membranes and filaments) and its ground truth."""
    return sample_layers("cells")


def _limits(data: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(data, [0.5, 99.9])
    return (float(lo), float(hi if hi > lo else lo + 1))
