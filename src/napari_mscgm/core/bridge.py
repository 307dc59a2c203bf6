"""Brownian Bridge Diffusion Process (BBDP), as in BBDM (Li et al., CVPR 2023).

This module holds only the maths: the schedule, forward sampling, the
training target and the skip-step reverse sampler. The network that predicts
the target is passed in as a function, so the sampler knows nothing about
architectures (the diffusers split).

Schedule (``T = num_timesteps``, ``t ∈ {0 … T-1}``)::

    m_t   = linspace(0.001, 0.999, T)
    var_t = 2 · max_var · (m_t − m_t²)
    x_t   = (1 − m_t) · x0 + m_t · y + sqrt(var_t) · ε

Objective "grad": the network predicts ``x_t − x0`` and is trained with L1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["BrownianBridge", "StepCoefficients"]

PredictFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseFn = Callable[[int], torch.Tensor]


class StepCoefficients(tuple):
    """``(x_t, x0_hat, y, sigma)`` coefficients of one reverse step ``t → n``."""

    __slots__ = ()

    def __new__(cls, x_t: float, x0_hat: float, y: float, sigma: float):
        return super().__new__(cls, (x_t, x0_hat, y, sigma))

    x_t = property(lambda self: self[0])
    x0_hat = property(lambda self: self[1])
    y = property(lambda self: self[2])
    sigma = property(lambda self: self[3])


class BrownianBridge:
    """The BBDM Brownian bridge between a clean ``x0`` (t = 0) and a condition ``y`` (t = T).

    Parameters
    ----------
    num_timesteps : int
        Number of training timesteps ``T`` (BBDM: 1000).
    max_var : float
        Peak variance scale (BBDM: 1.0); the variance peaks at ``max_var / 2``.
    """

    def __init__(self, num_timesteps: int = 1000, max_var: float = 1.0) -> None:
        if num_timesteps < 2:
            raise ValueError(f"num_timesteps must be >= 2, got {num_timesteps}")
        if max_var <= 0:
            raise ValueError(f"max_var must be > 0, got {max_var}")
        self.num_timesteps = int(num_timesteps)
        self.max_var = float(max_var)
        # float64 keeps the step coefficients exact to ~1e-12; tensors are cast per use.
        self._m = np.linspace(0.001, 0.999, self.num_timesteps, dtype=np.float64)
        self._variance = 2.0 * self.max_var * (self._m - self._m**2)

    @property
    def m(self) -> torch.Tensor:
        """Bridge mixing weights ``m_t`` (float64, length ``T``)."""
        return torch.from_numpy(self._m.copy())

    @property
    def variance(self) -> torch.Tensor:
        """Bridge variances ``var_t`` (float64, length ``T``)."""
        return torch.from_numpy(self._variance.copy())

    # ----------------------------------------------------------------- training
    def q_sample(
        self, x0: torch.Tensor, y: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """Draw ``x_t`` from the forward bridge for a batch of timesteps ``t`` (shape ``(N,)``)."""
        shape = (-1,) + (1,) * (x0.ndim - 1)
        m_t = torch.as_tensor(self._m, device=x0.device)[t].to(x0.dtype).reshape(shape)
        var_t = torch.as_tensor(self._variance, device=x0.device)[t].to(x0.dtype).reshape(shape)
        return (1.0 - m_t) * x0 + m_t * y + var_t.sqrt() * noise

    @staticmethod
    def training_target(x0: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        """The "grad" objective: the network learns ``x_t − x0``."""
        return x_t - x0

    @staticmethod
    def loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """L1 loss of the "grad" objective."""
        return (prediction - target).abs().mean()

    # ----------------------------------------------------------------- sampling
    def timesteps(self, steps: int) -> list[int]:
        """The descending timesteps visited by a reverse run of ``steps`` network evaluations.

        For ``steps >= 3`` this is BBDM's rule: the float range
        ``arange(T-1, 1, -(T-1)/(steps-2))`` truncated to integers, then ``[1, 0]``.
        ``steps == 1`` evaluates once at ``T-1`` and returns that ``x̂0``;
        ``steps == 2`` visits ``[T-1, 0]``. Above about ``T/2`` steps the
        truncated range repeats integers, so there the schedule is
        ``round(linspace(T-1, 0, steps))`` instead, which stays strictly
        decreasing and has exactly ``steps`` entries up to ``T``.
        """
        steps = int(steps)
        last = self.num_timesteps - 1
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if steps == 1:
            return [last]
        if steps == 2:
            return [last, 0]
        steps = min(steps, self.num_timesteps)
        head = np.arange(last, 1, -last / (steps - 2)).astype(np.int64).tolist()
        schedule = [*head, 1, 0]
        if len(schedule) != steps or len(set(schedule)) != steps:
            schedule = np.round(np.linspace(last, 0, steps)).astype(np.int64).tolist()
        return schedule

    def effective_steps(self, steps: int) -> int:
        """Network evaluations a run of ``steps`` really makes (at most ``T``)."""
        return len(self.timesteps(steps))

    def step_coefficients(self, t: int, n: int) -> StepCoefficients:
        """Coefficients of the reverse step from ``t`` to ``n < t``.

        ``x_n = a·x_t + b·x̂0 + c·y + eta·sigma·z``, from BBDM's posterior::

            sigma2 = (var_t − var_n (1−m_t)² / (1−m_n)²) · var_n / var_t
            c      = sqrt((var_n − sigma2) / var_t)
            x_n    = (1−m_n) x̂0 + m_n y + c (x_t − (1−m_t) x̂0 − m_t y) + eta sqrt(sigma2) z
        """
        if not 0 <= n < t < self.num_timesteps:
            raise ValueError(f"need 0 <= n < t < {self.num_timesteps}, got t={t}, n={n}")
        m_t, m_n = self._m[t], self._m[n]
        var_t, var_n = self._variance[t], self._variance[n]
        sigma2 = (var_t - var_n * (1.0 - m_t) ** 2 / (1.0 - m_n) ** 2) * var_n / var_t
        sigma2 = max(sigma2, 0.0)
        c = np.sqrt(max(var_n - sigma2, 0.0) / var_t)
        return StepCoefficients(
            x_t=float(c),
            x0_hat=float((1.0 - m_n) - c * (1.0 - m_t)),
            y=float(m_n - c * m_t),
            sigma=float(np.sqrt(sigma2)),
        )

    @torch.no_grad()
    def sample(
        self,
        predict: PredictFn,
        y: torch.Tensor,
        *,
        steps: int,
        eta: float = 1.0,
        noise: NoiseFn | None = None,
        callback: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Reverse-sample ``x0`` from the condition ``y``.

        Parameters
        ----------
        predict : callable
            ``predict(x_t, t)`` returns the "grad" prediction ``x_t − x0``;
            ``t`` is an int64 tensor of shape ``(N,)``.
        y : torch.Tensor
            The condition; the run starts at ``x_T = y`` exactly.
        steps : int
            Number of network evaluations (see :meth:`timesteps`).
        eta : float
            Scale of the posterior noise: 1 is the stochastic BBDM sampler,
            0 is deterministic with the same mean.
        noise : callable, optional
            ``noise(i)`` returns the standard normal tensor for reverse step ``i``
            (shape of ``y``). Required when ``eta != 0``; passing it in keeps the
            noise coordinate-keyed and independent of tiling.
        callback : callable, optional
            Called as ``callback(i, steps)`` after each network evaluation.
        """
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        if eta != 0 and noise is None:
            raise ValueError("a noise function is required when eta != 0")
        schedule = self.timesteps(steps)
        x_t = y
        batch = y.shape[0]
        for i, t in enumerate(schedule):
            t_batch = torch.full((batch,), t, dtype=torch.long, device=y.device)
            x0_hat = x_t - predict(x_t, t_batch)
            if callback is not None:
                callback(i + 1, len(schedule))
            if i + 1 == len(schedule):
                return x0_hat
            coef = self.step_coefficients(t, schedule[i + 1])
            x_next = coef.x_t * x_t + coef.x0_hat * x0_hat + coef.y * y
            if eta != 0 and coef.sigma > 0:
                x_next = x_next + (eta * coef.sigma) * noise(i).to(x_next.dtype)
            x_t = x_next
        raise AssertionError("unreachable: the schedule always ends by returning x0_hat")
