"""Small simulated sample images bundled with the package (for demos, docs and tests).

Each sample is a pair made by :mod:`napari_mscgm.simulate` with a fixed seed
(``training/make_samples.py`` regenerates them): ``<scene>_low.ome.tif`` is the
10×/0.4 NA camera image in ADU (0.65 µm pixels) and ``<scene>_high.ome.tif``
the noise-free 20×/0.75 NA ground truth in photons (0.325 µm pixels).

>>> from napari_mscgm.samples import sample_path
>>> sample_path("beads_low").name
'beads_low.ome.tif'
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import InputError

__all__ = [
    "SAMPLES",
    "SAMPLE_MODELS",
    "SAMPLE_SEEDS",
    "list_samples",
    "load_sample",
    "sample_path",
]

#: Sample name → (scene preset, role).
SAMPLES: dict[str, tuple[str, str]] = {
    "beads_low": ("beads", "input"),
    "beads_high": ("beads", "ground truth"),
    "cells_low": ("cells", "input"),
    "cells_high": ("cells", "ground truth"),
}

#: Scene preset → (simulator seed, input peak photons) the samples were made with.
#: Scene preset → the bundled model its sample is made for (the widget picks it).
SAMPLE_MODELS: dict[str, str] = {"beads": "beads-sr2x", "cells": "fluo-sr2x"}

SAMPLE_SEEDS: dict[str, tuple[int, float]] = {
    "beads": (20251123, 200.0),
    "cells": (20251124, 200.0),
}
#: Target-grid shape of the samples.
SAMPLE_SHAPE = 256


def list_samples() -> list[str]:
    """Names of the bundled samples."""
    return sorted(SAMPLES)


def sample_path(name: str) -> Path:
    """Path of a bundled sample file, e.g. ``sample_path("beads_low")``.

    Raises
    ------
    InputError
        ``name`` is not a bundled sample.
    """
    if name not in SAMPLES:
        raise InputError(f"unknown sample {name!r}; choose from {', '.join(list_samples())}")
    return Path(str(resources.files(__name__) / f"{name}.ome.tif"))


def load_sample(name: str) -> tuple:
    """A sample's pixels (2D float32) and its ``(y, x)`` pixel size in µm."""
    from ..io import read_image

    image = read_image(sample_path(name))
    data = image.data.compute().reshape(image.data.shape[-2:])
    return data, image.pixel_size_um[1:]
