"""Training losses of MSCGM's detail generators (WMGM's weights) and their critic.

Generator ``k``'s loss on the reconstruction at scale ``k - 1``::

    alpha · (−mean σ(D(fake))) + lambda · MSE + nu · (1 − SSIM)

The bounded WGAN-like critic ``D`` minimises ``mean σ(D(fake)) − mean σ(D(real))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["critic_loss", "generator_loss", "ssim_torch"]


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_torch(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of ``(N, 1, H, W)`` batches (Gaussian window 11 / σ 1.5, differentiable)."""
    size = 11 if min(a.shape[-2:]) >= 11 else (min(a.shape[-2:]) // 2) * 2 - 1
    window = _gaussian_window(size).to(a)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = F.conv2d(a, window), F.conv2d(b, window)
    var_a = F.conv2d(a * a, window) - mu_a**2
    var_b = F.conv2d(b * b, window) - mu_b**2
    cov = F.conv2d(a * b, window) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return ssim.mean()


def generator_loss(
    fake: torch.Tensor,
    real: torch.Tensor,
    fake_logits: torch.Tensor,
    *,
    alpha: float,
    lam: float,
    nu: float,
) -> torch.Tensor:
    """``alpha · adversarial + lam · MSE + nu · (1 − SSIM)`` of one scale's reconstruction."""
    adversarial = -torch.sigmoid(fake_logits).mean()
    return lam * F.mse_loss(fake, real) + nu * (1 - ssim_torch(fake, real)) + alpha * adversarial


def critic_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """The bounded critic's ``mean σ(D(fake)) − mean σ(D(real))``."""
    return torch.sigmoid(fake_logits).mean() - torch.sigmoid(real_logits).mean()
