"""The CARE-like baseline's trainer: L1 regression on the bicubic input."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...config import CAREConfig, NormalizationConfig
from ...core.care import CARENet
from ..loop import Trainer, mean_scores

__all__ = ["CARETrainer"]


class CARETrainer(Trainer):
    """Trains :class:`~napari_mscgm.core.care.CARENet` in one stage, ``care``."""

    def build(self, init_model: None, normalization: NormalizationConfig) -> CARENet:
        cfg = self.config
        return CARENet(
            CAREConfig(
                name=cfg.name,
                scale=cfg.scale,
                base_channels=cfg.base_channels,
                channel_mults=cfg.channel_mults,
                num_res_blocks=cfg.num_res_blocks,
                normalization=normalization,
                physics=self.physics,
                license=cfg.license,
                description=cfg.description,
            )
        )

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"care": self.adamw(self.net.parameters(), self.config.care.lr)}

    def step(self, stage: str, batch_size: int) -> float:
        low, high = self.batch(batch_size)
        loss = F.l1_loss(self.net(self.net.upsample(low)), high)
        opt = self.optimizers["care"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        low, high = self.val_pool.center_crops(self.val_crop)
        net = self.ema.module
        preds = net(net.upsample(low.to(self.device)))
        return mean_scores(preds, high)
