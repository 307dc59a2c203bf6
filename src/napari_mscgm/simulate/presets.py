"""Named simulator configurations."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..config._base import first_error
from ..config.simulation import Acquisition, Microscope, SimulationConfig
from ..errors import InputError

__all__ = ["PRESETS", "preset_config"]

#: Named configurations: one per scene class (docs/simulator.md), sharing the default
#: 10×/0.4 → 20×/0.75, 520 nm physics, and the generalist models' broad data.
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
    # The generalists' data: every class, a quarter of the fields composites, the input's
    # acquisition drawn around the preset for every pair, 10 to 2000 peak photons.
    "fluo": SimulationConfig(
        scene="mixed",
        composite_fraction=0.25,
        input_peak_photons=(10.0, 2000.0),
        background_photons=(0.5, 30.0),
        acquisition=Acquisition(),
    ),
    # Denoising: the same 20x/0.75 NA objective and camera for input and target.
    "fluo-denoise": SimulationConfig(
        input=Microscope(na=0.75, magnification=20),
        scene="mixed",
        composite_fraction=0.25,
        input_peak_photons=(10.0, 2000.0),
        background_photons=(0.5, 30.0),
        acquisition=Acquisition(same_objective=True),
    ),
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
    try:
        return SimulationConfig.model_validate({**PRESETS[name].model_dump(), **overrides})
    except ValidationError as exc:
        raise InputError(f"invalid simulation settings: {first_error(exc)}") from None
