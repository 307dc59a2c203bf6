"""Named simulator configurations."""

from __future__ import annotations

from typing import Any

from ..config.simulation import SimulationConfig
from ..errors import InputError

__all__ = ["PRESETS", "preset_config"]

#: Named configurations, one per scene class (docs/simulator.md); all share the default
#: 10×/0.4 → 20×/0.75, 520 nm physics.
PRESETS: dict[str, SimulationConfig] = {
    "beads": SimulationConfig(scene="beads", background_photons=(0.5, 10.0)),
    "filaments": SimulationConfig(scene="filaments"),
    "cells": SimulationConfig(scene="cells"),
    "nuclei": SimulationConfig(scene="nuclei"),
    "actin": SimulationConfig(scene="actin"),
    "microtubules": SimulationConfig(scene="microtubules"),
    "er": SimulationConfig(scene="er"),
    "mitochondria": SimulationConfig(scene="mitochondria"),
    "puncta": SimulationConfig(scene="puncta"),
    "membranes": SimulationConfig(scene="membranes"),
    "tissue": SimulationConfig(scene="tissue"),
    "sparse": SimulationConfig(scene="sparse"),
    "composite": SimulationConfig(scene="composite"),
    "mixed": SimulationConfig(scene="mixed"),
}


def preset_config(name: str, **overrides: Any) -> SimulationConfig:
    """A preset of :data:`PRESETS`, optionally with fields replaced (validated).

    >>> preset_config("beads", input_peak_photons=(100, 100)).scale
    2
    """
    if name not in PRESETS:
        raise InputError(f"unknown simulation preset {name!r}; choose from {sorted(PRESETS)}")
    if not overrides:
        return PRESETS[name]
    return SimulationConfig.model_validate({**PRESETS[name].model_dump(), **overrides})
