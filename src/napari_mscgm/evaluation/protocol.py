"""The evaluation protocol: which methods a model is compared with, and what is measured.

- Super-resolution: the raw input (nearest), bicubic, Richardson–Lucy (iterations tuned
  on a separate set), a CARE-like network trained on the same data with the same budget
  (``--care``), MSCGM, and the Fourier oracle at the input's Nyquist frequency (the
  reference limit; it is given the ground truth).
- Denoising: the raw input, non-local means (after a variance-stabilising transform,
  strength tuned on a separate set), CARE, MSCGM.
- Measures: CARE-style PSNR and SSIM, the HF-error ratio, seconds per output megapixel;
  for MSCGM also the consistency verdict and, with several samples, the coverage of the
  ±1.645 σ interval and the Spearman correlation of σ with the absolute error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .baselines import (
    bicubic,
    deconvolution_sigma_px,
    fourier_oracle,
    nearest,
    non_local_means,
    richardson_lucy_baseline,
)
from .calibration import errors_of, uncertainty_scores

__all__ = ["RL_ITERATIONS", "MSCGMMethod", "OracleMethod", "methods_for"]

#: Richardson–Lucy iterations, tuned on a separate simulated set (8 classes × 30 and 300
#: photons, seed 5): 1 → 23.35 dB / 0.498, 2 → 23.35 / 0.508, 3 → 23.22 / 0.506,
#: 5 → 22.99 / 0.499, 20 → 22.31 / 0.482; more iterations amplify the noise.
RL_ITERATIONS = 2


class MSCGMMethod:
    """MSCGM as an evaluated method: the restoration, its verdict and its uncertainty."""

    def __init__(self, model: Any, *, steps: int, eta: float, seed: int, samples: int = 1):
        self.model, self.steps, self.eta, self.seed, self.samples = model, steps, eta, seed, samples
        self._last: tuple[Any, Any, dict] | None = None

    def __call__(self, low: np.ndarray) -> np.ndarray:
        from ..restoration import restore

        result, metadata = restore(
            low, self.model, steps=self.steps, seed=self.seed, eta=self.eta, axes="YX",
            samples=self.samples, return_metadata=True,
        )  # fmt: skip
        mean, std = (result, None) if self.samples == 1 else result
        self._last = (mean, std, metadata["consistency"])
        return mean

    def extra(self, low: np.ndarray, high: np.ndarray, prediction: np.ndarray) -> dict:
        mean, std, consistency = self._last
        row = {
            "verdict": consistency["verdict"],
            "rsp": consistency["rsp"],
            "inconsistent_fraction": consistency["inconsistent_fraction"],
        }
        if std is not None:
            row.update(uncertainty_scores(errors_of(self.model, low, high, mean, std)))
        return row


class OracleMethod:
    """The Fourier oracle: a reference, not a method (it is handed the ground truth)."""

    given_truth = True

    def __init__(self, scale: int) -> None:
        self.scale = scale

    def __call__(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        return fourier_oracle(high, scale=self.scale)


def methods_for(
    model: Any,
    *,
    steps: int,
    eta: float,
    seed: int = 0,
    samples: int = 1,
    care: Any = None,
    rl_iterations: int = RL_ITERATIONS,
) -> dict[str, Any]:
    """The methods a model is compared with, in the order of the tables."""
    scale = model.scale
    methods: dict[str, Any] = {"input (nearest)": lambda low: nearest(low, scale=scale)}
    if scale > 1:
        sigma = deconvolution_sigma_px(model.config.physics)
        methods["bicubic"] = lambda low: bicubic(low, scale=scale)
        methods[f"richardson-lucy ({rl_iterations} it)"] = lambda low: richardson_lucy_baseline(
            low, scale=scale, sigma_px=sigma, num_iter=rl_iterations
        )
    else:
        methods["non-local means"] = non_local_means
    if care is not None:
        methods["care"] = care.predict
    methods[f"mscgm ({steps} steps)"] = MSCGMMethod(
        model, steps=steps, eta=eta, seed=seed, samples=samples
    )
    if scale > 1:
        methods["fourier oracle (reference)"] = OracleMethod(scale)
    return methods
