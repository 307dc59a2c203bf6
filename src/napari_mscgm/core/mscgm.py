"""The MSCGM model: wavelet split, Brownian bridge on ``LL_S``, generators coarse to fine.

Value conventions inside the model (all on the target grid):

* images are percentile-normalised to roughly [0, 1]
  (:class:`~napari_mscgm.core.normalize.PercentileNormalizer`);
* the bridge runs on ``LL_S / 2**S`` mapped to [-1, 1] (``LL_S`` is ``2**S`` times
  the local mean of an orthonormal Haar transform);
* the generator of scale ``k`` sees its bands divided by ``2**k`` for the same reason.

Weights are read and written by :mod:`napari_mscgm.model_io`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..config.model import ModelConfig
from .bridge import BrownianBridge
from .networks import HighFrequencyGenerator, TimeConditionedUNet
from .noise import NoiseKey, gaussian_field
from .resample import upsample
from .wavelets import haar_idwt2_level, haar_pyramid, pad_to_multiple

__all__ = ["GENERATOR_STREAM", "MSCGM"]

#: Noise stream of generator ``k`` (bridge steps use streams 0 … T-1).
GENERATOR_STREAM = 1_000_000
#: Float tensors of the first level's width alive at the peak of a forward pass, and
#: floats per pixel of the wavelet pyramid and buffers: fitted to peak RSS on the CPU
#: (default model: about 350 bytes per target pixel, the tiny test model about 140).
_BLOCK_FLOATS = 12
_PYRAMID_FLOATS = 5


class MSCGM(nn.Module):
    """Multi-scale conditional generative model for one imaging task.

    Parameters
    ----------
    config : ModelConfig
        Architecture and metadata; ``MSCGM(ModelConfig())`` gives the default sizes.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.bridge = BrownianBridge(config.bbdp.num_timesteps, config.bbdp.max_var)
        self.unet = TimeConditionedUNet(**config.networks.unet.model_dump())
        self.generators = nn.ModuleList(
            HighFrequencyGenerator(**g.model_dump()) for g in config.networks.generators
        )
        self.sha256: str | None = None  # set by load_model

    def metadata_json(self) -> str:
        """The ``mscgm`` document of the weights file."""
        return self.config.model_dump_json()

    # ------------------------------------------------------------ properties
    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def levels(self) -> int:
        return self.config.levels

    @property
    def channels(self) -> int:
        return self.config.networks.unet.channels

    @property
    def size_multiple(self) -> int:
        """Target-grid sizes (and tile origins) must be multiples of this."""
        multiple = (2**self.levels) * self.unet.size_multiple
        for k, gen in enumerate(self.generators, start=1):
            multiple = max(multiple, (2**k) * gen.size_multiple)
        return multiple

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward_bytes(self, height: int, width: int, batch: int = 1) -> int:
        """Estimated peak CPU memory of one :meth:`sample` call, in bytes.

        For a ``(batch, C, height, width)`` input on the target grid. The networks run
        one after another, so the peak is the widest network at its resolution
        (generator ``k`` at ``1 / 2**k``, the U-Net at ``1 / 2**levels``) plus the
        wavelet pyramid kept throughout. Per network: its input, ``_BLOCK_FLOATS``
        tensors of the first level's width (residual-block temporaries and convolution
        workspace, measured) and the skip connections of every level.
        """
        multiple = self.size_multiple
        pixels = (-(-height // multiple) * multiple) * (-(-width // multiple) * multiple)
        c = self.channels

        def network(cin: int, base: int, mults: tuple[int, ...], level: int) -> float:
            skips = sum(base * m / 4**i for i, m in enumerate(mults))
            return (cin + _BLOCK_FLOATS * base * mults[0] + skips) * pixels / 4**level

        unet = self.config.networks.unet
        peaks = [network(2 * c, unet.base_channels, unet.channel_mults, self.levels)]
        for k, g in enumerate(self.config.networks.generators, start=1):
            cin = 5 * c + g.noise_channels
            peaks.append(network(cin, g.base_channels, g.channel_mults, k))
        return int(4 * batch * (max(peaks) + _PYRAMID_FLOATS * c * pixels))

    # ------------------------------------------------------------ the method
    def sampling(self, steps: int | None = None, eta: float | None = None) -> tuple[int, float]:
        """The bridge steps and eta a run uses: the model's defaults where None.

        Steps are network evaluations, at most the bridge's ``T`` (more visit no new
        timestep), so this is also what a run records.
        """
        steps = self.config.bbdp.default_steps if steps is None else int(steps)
        eta = self.config.bbdp.default_eta if eta is None else float(eta)
        return self.bridge.effective_steps(steps), eta

    def upsample(self, image: torch.Tensor) -> torch.Tensor:
        """Resample ``(N, C, h, w)`` onto the target grid (bicubic, pixel-centre aligned)."""
        return upsample(image, self.scale)

    def to_bridge(self, ll: torch.Tensor) -> torch.Tensor:
        return ll * (2.0 / 2**self.levels) - 1.0

    def from_bridge(self, value: torch.Tensor) -> torch.Tensor:
        return (value + 1.0) * (2**self.levels / 2.0)

    @torch.no_grad()
    def sample(
        self,
        degraded: torch.Tensor,
        *,
        keys: Sequence[NoiseKey],
        steps: int | None = None,
        eta: float | None = None,
        callback: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Restore a batch already on the target grid.

        Parameters
        ----------
        degraded : torch.Tensor
            ``(N, C, H, W)`` normalised degraded images, resampled to the target grid.
        keys : sequence of NoiseKey
            The noise identity of each batch item; ``(y0, x0)`` is its absolute
            position on the target grid and must be a multiple of ``2**levels``.
        steps, eta : optional
            Reverse bridge steps and noise scale; the model's defaults when None.
        callback : callable, optional
            ``callback(i, steps)`` after each bridge step.

        Returns
        -------
        torch.Tensor
            ``(N, C, H, W)`` restored images, normalised like the input.
        """
        steps, eta = self.sampling(steps, eta)
        if len(keys) != degraded.shape[0]:
            raise ValueError(
                f"need one noise key per batch item, got {len(keys)} for {degraded.shape[0]}"
            )
        padded, (height, width) = pad_to_multiple(degraded, self.size_multiple)
        degraded_lls, degraded_details = haar_pyramid(padded, self.levels)

        condition = self.to_bridge(degraded_lls[-1])
        shape = tuple(condition.shape[-2:])
        device = padded.device

        def bridge_noise(i: int) -> torch.Tensor:
            return gaussian_field(
                keys,
                stream=i,
                level=self.levels,
                shape=shape,
                channels=self.channels,
                device=device,
            ).to(condition.dtype)

        restored = self.bridge.sample(
            lambda x_t, t: self.unet(x_t, t, condition),
            condition,
            steps=steps,
            eta=eta,
            noise=bridge_noise,
            callback=callback,
        )
        ll = self.from_bridge(restored)
        if self.config.observation_blend is not None:
            ll = self.blend_observation(ll, degraded_lls[-1], degraded_details)

        def generator_noise(k: int, shape: tuple[int, int], channels: int) -> torch.Tensor:
            field = gaussian_field(
                keys,
                stream=GENERATOR_STREAM + k,
                level=k,
                shape=shape,
                channels=channels,
                device=device,
            )
            return field.to(ll.dtype)

        return self.decode(ll, degraded_lls, degraded_details, generator_noise)[-1][
            ..., :height, :width
        ]

    def blend_observation(
        self,
        ll: torch.Tensor,
        observed_ll: torch.Tensor,
        observed_details: Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """Keep the input's own ``LL_S`` where its local noise is below the bridge's error.

        The noise estimate is the mean square of the input's detail coefficients at the
        finest level that still holds its noise (level ``log2(scale) + 1``: resampling
        onto the target grid moves it there), pooled onto the ``LL_S`` grid, so it is
        a function of each ``LL_S`` pixel's own block (tiling cannot change it).
        See :class:`~napari_mscgm.config.model.ObservationBlend`.
        """
        blend = self.config.observation_blend
        level = self.scale.bit_length() - 1  # index into the finest-first details
        energy = observed_details[level].float().pow(2).mean(dim=2)
        window = 2 ** (self.levels - 1 - level)
        if window > 1:
            energy = nn.functional.avg_pool2d(energy, window)
        weight = blend.max_weight * blend.floor / (blend.floor + energy)
        return ll + weight.to(ll.dtype) * (observed_ll - ll)

    def decode(
        self,
        ll: torch.Tensor,
        degraded_lls: Sequence[torch.Tensor],
        degraded_details: Sequence[torch.Tensor],
        noise: Callable[[int, tuple[int, int], int], torch.Tensor],
        *,
        detach: bool = False,
    ) -> list[torch.Tensor]:
        """The generators, coarse to fine: from ``LL_S`` to the image on the target grid.

        The same code runs at inference (from the bridge's ``LL_S``) and in training
        (from the clean ``LL_S``), so the two cannot drift apart.

        Parameters
        ----------
        ll : torch.Tensor
            ``LL_S`` (orthonormal Haar scale, not bridge space).
        degraded_lls, degraded_details : sequence of torch.Tensor
            :func:`~napari_mscgm.core.wavelets.haar_pyramid` of the degraded image.
        noise : callable
            ``noise(k, (h, w), channels)`` returns the noise map of generator ``k``.
        detach : bool
            Cut the gradient between scales (training: each generator learns from
            the detached output of the coarser one, as it will see it at inference).

        Returns
        -------
        list of torch.Tensor
            ``[LL_(S-1), …, LL_0]``: the reconstruction after each scale.
        """
        outputs = []
        for k in range(self.levels, 0, -1):
            generator = self.generators[k - 1]
            z = noise(k, tuple(ll.shape[-2:]), generator.noise_channels)
            band_scale = 2.0**k
            details = generator(
                ll / band_scale,
                degraded_lls[k] / band_scale,
                degraded_details[k - 1] / band_scale,
                z,
            )
            ll = haar_idwt2_level(ll, details * band_scale)
            outputs.append(ll)
            if detach:
                ll = ll.detach()
        return outputs

    def bridge_endpoints(
        self, clean: torch.Tensor, degraded: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0, y)``: the clean and the degraded ``LL_S`` in bridge space (training)."""
        x0 = self.to_bridge(haar_pyramid(clean, self.levels)[0][-1])
        y = self.to_bridge(haar_pyramid(degraded, self.levels)[0][-1])
        return x0, y
