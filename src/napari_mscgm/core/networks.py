"""Networks of MSCGM: the time-conditioned U-Net for ``LL_S``, the per-scale
high-frequency generators and the training discriminators.

All constructor arguments are plain JSON values, so a weights file can record
them and rebuild the exact architecture (see :mod:`napari_mscgm.model_io.weights`).

Normalisation layers: ``norm="group"`` is ``torch.nn.GroupNorm`` (statistics over
a channel group and all pixels of the input), ``norm="pixel"`` normalises over
all channels at each pixel. Per-pixel statistics make the output of
a pixel independent of how large the tile around it is, which is what lets tiled
and whole-image restoration agree; the bundled models use it.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "HighFrequencyGenerator",
    "PatchDiscriminator",
    "TimeConditionedUNet",
    "UNetCore",
    "count_parameters",
]

NormKind = Literal["group", "pixel"]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _num_groups(channels: int) -> int:
    for groups in (8, 4, 2, 1):
        if channels % groups == 0:
            return groups
    return 1


class PixelGroupNorm(nn.Module):
    """GroupNorm with per-pixel statistics over each channel group (tile-size independent).

    With one group this is a LayerNorm over channels at every pixel (as in ConvNeXt).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if self.num_groups == 1:  # the fused LayerNorm kernel: ~3× faster, same numbers
            channels_last = F.layer_norm(
                x.permute(0, 2, 3, 1), (c,), self.weight, self.bias, self.eps
            )
            return channels_last.permute(0, 3, 1, 2)
        g = x.reshape(n, self.num_groups, c // self.num_groups, h, w)
        mean = g.mean(dim=2, keepdim=True)
        var = g.var(dim=2, keepdim=True, unbiased=False)
        g = (g - mean) * torch.rsqrt(var + self.eps)
        return g.reshape(n, c, h, w) * self.weight[:, None, None] + self.bias[:, None, None]


def _norm(kind: NormKind, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(_num_groups(channels), channels)
    if kind == "pixel":
        # One group over all channels: per-pixel statistics of a small group (or of a
        # single channel) would erase the signal.
        return PixelGroupNorm(1, channels)
    raise ValueError(f"unknown norm {kind!r}; expected 'group' or 'pixel'")


class SinusoidalTimeEmbedding(nn.Module):
    """Transformer-style sinusoidal embedding of integer timesteps."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"time embedding dim must be even, got {dim}")
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(
            -math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half
        )
        args = t.to(torch.float32)[:, None] * freqs[None, :]
        return torch.cat((torch.sin(args), torch.cos(args)), dim=1)


class ResidualBlock(nn.Module):
    """norm → SiLU → conv → (+ time) → norm → SiLU → conv, plus a 1×1 skip when widths differ."""

    def __init__(
        self, in_channels: int, out_channels: int, *, time_dim: int | None, norm: NormKind
    ) -> None:
        super().__init__()
        self.norm1 = _norm(norm, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time = nn.Linear(time_dim, out_channels) if time_dim else None
        self.norm2 = _norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = (
            nn.Conv2d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time is not None and temb is not None:
            h = h + self.time(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class AttentionBlock(nn.Module):
    """Single-head self-attention over all pixels (used only at the lowest resolution)."""

    def __init__(self, channels: int, *, norm: NormKind) -> None:
        super().__init__()
        self.norm = _norm(norm, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(dim=1)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2)[:, None], k.transpose(1, 2)[:, None], v.transpose(1, 2)[:, None]
        )[:, 0]
        return x + self.proj(out.transpose(1, 2).reshape(n, c, h, w))


class UNetCore(nn.Module):
    """Encoder–decoder shared by the LL U-Net and the generators (time embedding optional)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        base_channels: int,
        channel_mults: tuple[int, ...],
        num_res_blocks: int,
        attention: bool,
        time_dim: int | None,
        norm: NormKind,
    ) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        widths = [base_channels * m for m in channel_mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skip_widths = []
        width = base_channels
        for i, w in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResidualBlock(width, w, time_dim=time_dim, norm=norm))
                width = w
            self.down.append(blocks)
            skip_widths.append(width)
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
        self.mid1 = ResidualBlock(width, width, time_dim=time_dim, norm=norm)
        self.mid_attention = AttentionBlock(width, norm=norm) if attention else nn.Identity()
        self.mid2 = ResidualBlock(width, width, time_dim=time_dim, norm=norm)
        self.up = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for j in range(num_res_blocks):
                extra = skip_widths[i] if j == 0 else 0
                blocks.append(ResidualBlock(width + extra, w, time_dim=time_dim, norm=norm))
                width = w
            self.up.append(blocks)
        self.out_norm = _norm(norm, width)
        self.out_conv = nn.Conv2d(width, out_channels, 3, padding=1)
        self.levels = len(widths)

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.stem(x)
        skips = []
        for i, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, temb)
            skips.append(h)
            if i < self.levels - 1:
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attention(self.mid1(h, temb)), temb)
        for i, blocks in enumerate(self.up):
            level = self.levels - 1 - i
            if i > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = torch.cat((h, skips[level]), dim=1)
            for block in blocks:
                h = block(h, temb)
        return self.out_conv(F.silu(self.out_norm(h)))


class TimeConditionedUNet(nn.Module):
    """U-Net that predicts the Brownian-bridge target for ``LL_S``.

    Input is ``x_t`` concatenated with the degraded ``LL_S`` (the condition); a
    sinusoidal embedding of ``t`` modulates every residual block.

    Parameters
    ----------
    channels : int
        Image channels (1 for single-channel fluorescence).
    base_channels : int
        Width of the first level.
    channel_mults : tuple of int
        Width multipliers per level; ``len - 1`` downsamplings.
    num_res_blocks : int
        Residual blocks per level.
    attention : bool
        Self-attention at the lowest resolution. Off by default: global
        attention makes a tile's output depend on the tile's extent.
    norm : {"group", "pixel"}
        Normalisation layer (see module docstring).
    """

    def __init__(
        self,
        channels: int = 1,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] | list[int] = (1, 2, 2),
        num_res_blocks: int = 1,
        attention: bool = False,
        norm: NormKind = "pixel",
    ) -> None:
        super().__init__()
        self.channels = channels
        time_dim = base_channels * 4
        self.time_embedding = nn.Sequential(
            SinusoidalTimeEmbedding(base_channels),
            nn.Linear(base_channels, time_dim),
            nn.SiLU(),
            nn.Linear(time_dim, time_dim),
        )
        self.core = UNetCore(
            2 * channels,
            channels,
            base_channels=base_channels,
            channel_mults=tuple(channel_mults),
            num_res_blocks=num_res_blocks,
            attention=attention,
            time_dim=time_dim,
            norm=norm,
        )
        self.size_multiple = 2 ** (len(tuple(channel_mults)) - 1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.core(torch.cat((x_t, condition), dim=1), self.time_embedding(t))


class HighFrequencyGenerator(nn.Module):
    """Conditional generator of the three detail bands at one wavelet scale.

    Inputs (all at the resolution of scale ``k``): the restored ``LL_k``, the
    degraded image's four bands at that scale (``LL``, ``H``, ``V``, ``D``) and a
    noise map. The network predicts the detail bands directly, not a correction
    of the degraded ones: at low SNR those are mostly noise, which a residual
    network would first have to learn to cancel. The last convolution starts at
    zero, so an untrained generator adds no detail (a smooth, not a noisy, image).

    Parameters
    ----------
    channels : int
        Image channels.
    noise_channels : int
        Channels of the Gaussian noise map ``z_k``.
    base_channels, channel_mults, num_res_blocks, norm
        As for :class:`TimeConditionedUNet`.
    """

    def __init__(
        self,
        channels: int = 1,
        noise_channels: int = 1,
        base_channels: int = 24,
        channel_mults: tuple[int, ...] | list[int] = (1, 2),
        num_res_blocks: int = 1,
        norm: NormKind = "pixel",
    ) -> None:
        super().__init__()
        self.channels = channels
        self.noise_channels = noise_channels
        self.core = UNetCore(
            channels + 4 * channels + noise_channels,
            3 * channels,
            base_channels=base_channels,
            channel_mults=tuple(channel_mults),
            num_res_blocks=num_res_blocks,
            attention=False,
            time_dim=None,
            norm=norm,
        )
        self.size_multiple = 2 ** (len(tuple(channel_mults)) - 1)
        nn.init.zeros_(self.core.out_conv.weight)
        nn.init.zeros_(self.core.out_conv.bias)

    def forward(
        self,
        ll: torch.Tensor,
        degraded_ll: torch.Tensor,
        degraded_details: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """Return ``(N, C, 3, h, w)`` detail bands."""
        n, c, three, h, w = degraded_details.shape
        flat = degraded_details.reshape(n, c * three, h, w)
        bands = self.core(torch.cat((ll, degraded_ll, flat, noise), dim=1))
        return bands.reshape(n, c, three, h, w)


class PatchDiscriminator(nn.Module):
    """PatchGAN critic on the inverse-transformed image at one scale (training only)."""

    def __init__(self, channels: int = 1, base_channels: int = 32, num_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(channels, base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        width = base_channels
        for _ in range(num_layers - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, stride=2, padding=1),
                nn.GroupNorm(_num_groups(width * 2), width * 2),
                nn.LeakyReLU(0.2),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Patch logits, ``(N, 1, h, w)``."""
        return self.net(image)
