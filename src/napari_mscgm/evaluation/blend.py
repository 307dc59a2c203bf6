"""Fit a model's observation blend (:class:`~napari_mscgm.config.model.ObservationBlend`).

A grid search on held-out simulated pairs: every ``(floor, max_weight)`` of the grid is
scored by the mean PSNR of the restorations (the metrics of :mod:`.metrics`), and the
best is kept only if it beats no blend at all. One sample per image and the model's
default steps: what a user gets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config.model import ObservationBlend
from .metrics import care_metrics, is_empty_field

__all__ = ["FLOORS", "MAX_WEIGHTS", "fit_observation_blend"]

#: The grid: bridge error variances (normalised units) and the largest weight of the input.
FLOORS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
MAX_WEIGHTS = (0.5, 0.75, 1.0)


def _mean_scores(model, pairs: Sequence[tuple], seed: int) -> tuple[float, float]:
    from ..restoration import restore

    scores = [
        care_metrics(restore(low, model, seed=seed + i, axes="YX", consistency=False), high)
        for i, (_, low, high) in enumerate(pairs)
        if not is_empty_field(high)
    ]
    psnr, ssim = np.mean(np.array(scores), axis=0)
    return float(psnr), float(ssim)


def fit_observation_blend(
    model,
    pairs: Sequence[tuple],
    *,
    floors: Sequence[float] = FLOORS,
    max_weights: Sequence[float] = MAX_WEIGHTS,
    seed: int = 0,
    fitted_on: str = "",
) -> tuple[ObservationBlend | None, list[dict]]:
    """The best blend on ``pairs`` (``(name, low, high)``), or None when none helps.

    Returns
    -------
    blend : ObservationBlend or None
    rows : list of dict
        Every candidate's ``floor``, ``max_weight``, ``psnr`` and ``ssim`` (no blend first,
        with ``floor`` and ``max_weight`` 0).
    """
    original = model.config
    try:
        model.config = original.model_copy(update={"observation_blend": None})
        psnr, ssim = _mean_scores(model, pairs, seed)
        rows = [{"floor": 0.0, "max_weight": 0.0, "psnr": psnr, "ssim": ssim}]
        for floor in floors:
            for weight in max_weights:
                blend = ObservationBlend(floor=floor, max_weight=weight, fitted_on=fitted_on)
                model.config = original.model_copy(update={"observation_blend": blend})
                psnr, ssim = _mean_scores(model, pairs, seed)
                rows.append({"floor": floor, "max_weight": weight, "psnr": psnr, "ssim": ssim})
    finally:
        model.config = original
    best = max(rows, key=lambda r: r["psnr"])
    if best["max_weight"] == 0.0:
        return None, rows
    return ObservationBlend(floor=best["floor"], max_weight=best["max_weight"],
                            fitted_on=fitted_on), rows  # fmt: skip
