"""MSCGM's trainer: the Brownian bridge on ``LL_S``, then the per-scale detail generators.

Stage 1, the bridge: the time-conditioned U-Net learns BBDM's "grad" target
``x_t − x0`` with an L1 loss, where ``x0`` is the clean ``LL_S`` and ``y`` the
degraded one, both in bridge space.

Stage 2, the generators: :meth:`~napari_mscgm.core.mscgm.MSCGM.decode` from the
clean ``LL_S`` (each scale sees the detached output of the coarser one, as at
inference), with the losses of :mod:`napari_mscgm.core.losses` at each scale and a
PatchGAN critic per scale, updated every ``d_every`` generator steps with its own,
smaller learning rate.
"""

from __future__ import annotations

import torch
from torch import nn

from ...config import ModelConfig, NormalizationConfig
from ...core.losses import critic_loss, generator_loss
from ...core.mscgm import MSCGM
from ...core.networks import PatchDiscriminator
from ...core.noise import NoiseKey
from ...core.wavelets import haar_pyramid
from ...model_io.weights import load_model
from ..loop import Trainer, mean_scores, set_lr

__all__ = ["MSCGMTrainer"]


class MSCGMTrainer(Trainer):
    """Trains :class:`~napari_mscgm.core.mscgm.MSCGM` in the stages ``bridge``, ``generators``."""

    def load_init(self, init: str | None) -> MSCGM | None:
        return load_model(init, device="cpu") if init else None

    def build(self, init_model: MSCGM | None, normalization: NormalizationConfig) -> MSCGM:
        cfg = self.config
        if init_model is not None:
            model = init_model
            model.config = init_model.config.model_copy(
                update={
                    "name": cfg.name,
                    "description": cfg.description or init_model.config.description,
                    # the recipe's optics (a fine-tune for another microscope), else the init's
                    "physics": self.physics,
                    # a calibration describes the init's errors, not the new weights'
                    "calibration": None,
                }
            )
        else:
            model = MSCGM(
                ModelConfig(
                    name=cfg.name,
                    task="super-resolution" if cfg.scale > 1 else "denoising",
                    scale=cfg.scale,
                    levels=cfg.levels,
                    bbdp=cfg.bbdp,
                    networks=cfg.networks,
                    normalization=normalization,
                    physics=self.physics,
                    license=cfg.license,
                    description=cfg.description,
                )
            )
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(
                channels=model.channels, base_channels=cfg.d_base_channels, num_layers=2
            )
            for _ in range(model.levels)
        ).to(self.device)
        self.extra_modules = {"disc": self.discriminators}
        return model

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        return {
            "bridge": self.adamw(self.net.unet.parameters(), cfg.bridge.lr),
            "generators": self.adamw(self.net.generators.parameters(), cfg.generators.lr),
            "disc": self.adamw(self.discriminators.parameters(), cfg.lr_d),
        }

    def set_learning_rates(self, stage: str, factor: float) -> None:
        super().set_learning_rates(stage, factor)
        if stage == "generators":
            set_lr(self.optimizers["disc"], self.config.lr_d * factor)

    def step(self, stage: str, batch_size: int) -> float:
        return (
            self._step_bridge(batch_size)
            if stage == "bridge"
            else self._step_generators(batch_size)
        )

    def _step_bridge(self, batch_size: int) -> float:
        model: MSCGM = self.net
        low, high = self.batch(batch_size)
        with torch.no_grad():
            x0, y = model.bridge_endpoints(high, model.upsample(low))
            t = torch.randint(0, model.bridge.num_timesteps, (batch_size,), device=self.device)
            x_t = model.bridge.q_sample(x0, y, t, torch.randn_like(x0))
            target = model.bridge.training_target(x0, x_t)
        loss = model.bridge.loss(model.unet(x_t, t, y), target)
        opt = self.optimizers["bridge"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _step_generators(self, batch_size: int) -> float:
        model: MSCGM = self.net
        cfg = self.config
        low, high = self.batch(batch_size)
        with torch.no_grad():
            clean_lls, _ = haar_pyramid(high, model.levels)
            degraded_lls, degraded_details = haar_pyramid(model.upsample(low), model.levels)

        def noise(k: int, shape: tuple[int, int], channels: int) -> torch.Tensor:
            return torch.randn((batch_size, channels, *shape), device=self.device)

        recons = model.decode(clean_lls[-1], degraded_lls, degraded_details, noise, detach=True)
        loss = torch.zeros((), device=self.device)
        fakes, reals = [], []
        for k, recon in zip(range(model.levels, 0, -1), recons, strict=True):
            fake = recon / 2.0 ** (k - 1)
            real = clean_lls[k - 1] / 2.0 ** (k - 1)
            logits = self.discriminators[k - 1](fake)
            loss = loss + generator_loss(
                fake, real, logits, alpha=cfg.alpha, lam=cfg.lam, nu=cfg.nu
            )
            fakes.append(fake.detach())
            reals.append(real)
        opt = self.optimizers["generators"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if self.iteration % cfg.d_every == 0:
            self._step_critics(fakes, reals)
        return float(loss.detach())

    def _step_critics(self, fakes: list[torch.Tensor], reals: list[torch.Tensor]) -> None:
        d_loss = torch.zeros((), device=self.device)
        for i, k in enumerate(range(self.net.levels, 0, -1)):
            disc = self.discriminators[k - 1]
            d_loss = d_loss + critic_loss(disc(fakes[i]), disc(reals[i]))
        d_opt = self.optimizers["disc"]
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        low, high = self.val_pool.center_crops(self.val_crop)
        net = self.ema.module
        keys = [NoiseKey(seed=0, sample=i) for i in range(low.shape[0])]
        preds = net.sample(
            net.upsample(low.to(self.device)), keys=keys, steps=self.config.val_steps
        )
        return mean_scores(preds, high)
