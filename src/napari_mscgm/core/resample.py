"""Resampling of the degraded input onto the target grid (the one upsampling of the package)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["upsample"]


def upsample(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic resampling of ``(N, C, h, w)`` by an integer ``scale``, pixel-centre aligned.

    ``align_corners=False``: input pixel ``i`` spans ``[i, i + 1)`` and its ``scale``
    target pixels subdivide it, so a restored layer overlays its input exactly.
    """
    if scale == 1:
        return image
    return F.interpolate(image, scale_factor=scale, mode="bicubic", align_corners=False)
