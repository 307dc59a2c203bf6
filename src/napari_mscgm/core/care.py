"""The CARE-like baseline: a deterministic regression U-Net on the bicubic-resampled input.

The same building blocks as the MSCGM networks (residual blocks, per-pixel norm),
predicting a residual over the bicubic input, trained with an L1 loss. Its weights
are read and written by :mod:`napari_mscgm.model_io` with the same checks as MSCGM's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config.model import CAREConfig
from .networks import UNetCore
from .normalize import PercentileNormalizer
from .resample import upsample
from .wavelets import pad_to_multiple

__all__ = ["CARENet"]


class CARENet(nn.Module):
    """CARE-like regression U-Net (Weigert et al., 2018), sized like the MSCGM networks.

    Parameters
    ----------
    config : CAREConfig
        Architecture and metadata.
    """

    def __init__(self, config: CAREConfig) -> None:
        super().__init__()
        self.config = config
        self.core = UNetCore(
            1,
            1,
            base_channels=config.base_channels,
            channel_mults=tuple(config.channel_mults),
            num_res_blocks=config.num_res_blocks,
            attention=False,
            time_dim=None,
            norm=config.norm,
        )
        self.size_multiple = 2 ** (len(config.channel_mults) - 1)
        self.sha256: str | None = None  # set by load_care

    @property
    def scale(self) -> int:
        return self.config.scale

    def metadata_json(self) -> str:
        """The ``mscgm_care`` document of the weights file."""
        return self.config.model_dump_json()

    def upsample(self, image: torch.Tensor) -> torch.Tensor:
        """Bicubic resampling onto the target grid (as MSCGM's)."""
        return upsample(image, self.config.scale)

    def forward(self, upsampled: torch.Tensor) -> torch.Tensor:
        return upsampled + self.core(upsampled)

    @torch.no_grad()
    def predict(self, image: np.ndarray) -> np.ndarray:
        """Restore a 2D image in any units (percentile-normalised as in training)."""
        norm = self.config.normalization
        normalizer = PercentileNormalizer(norm.pmin, norm.pmax).fit(image)
        x = torch.from_numpy(normalizer.normalize(image).astype(np.float32))
        device = next(self.parameters()).device
        up = self.upsample(x[None, None].to(device))
        padded, (h, w) = pad_to_multiple(up, self.size_multiple)
        out = self(padded)[..., :h, :w]
        return normalizer.denormalize(out[0, 0].cpu().numpy()).astype(np.float32)
