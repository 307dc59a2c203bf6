"""Guarding against the wrong model: does the image's physics match what the model expects?"""

from __future__ import annotations

from ..config import ModelConfig

__all__ = ["PIXEL_SIZE_TOLERANCE", "pixel_size_mismatch"]

#: A pixel size this far (relative) from the model's input pixel size is a mismatch.
PIXEL_SIZE_TOLERANCE = 0.1


def pixel_size_mismatch(pixel_size_um: float | None, config: ModelConfig) -> float | None:
    """The model's expected input pixel size (µm) when ``pixel_size_um`` is far from it.

    Returns None when the two agree within :data:`PIXEL_SIZE_TOLERANCE`, or when either
    is unknown.
    """
    expected = config.physics.input_pixel_size_um
    if not (expected and pixel_size_um):
        return None
    if abs(pixel_size_um - expected) <= PIXEL_SIZE_TOLERANCE * expected:
        return None
    return expected
