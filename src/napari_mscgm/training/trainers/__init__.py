"""One trainer per algorithm."""

from __future__ import annotations

from typing import Any

__all__ = ["trainer_class"]


def trainer_class(config: Any) -> type:
    """The trainer of a recipe's ``algorithm``."""
    if config.algorithm == "care":
        from .care import CARETrainer

        return CARETrainer
    from .mscgm import MSCGMTrainer

    return MSCGMTrainer
