"""Scene generators: one module per structure class, all with the same signature.

Every generator is ``name(shape, *, pixel_size_um, rng, density=1.0,
pair_separation_um=DEFAULT_PAIR_SEPARATION_UM, **own options)`` and returns a
float64 dye map of ``shape`` with a peak of 1 (all zeros only for an empty
:func:`sparse` field), a deterministic function of its seed.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping

import numpy as np

from ...config.simulation import StructureClass
from .._random import Range, RngLike
from ._canvas import DEFAULT_PAIR_SEPARATION_UM
from .actin import actin
from .beads import BeadLayout, bead_positions, beads, render_beads
from .cells import cells
from .composite import composite, composite_layers
from .er import er
from .filaments import filaments
from .membranes import membranes
from .microtubules import microtubules
from .mitochondria import mitochondria
from .nuclei import nuclei
from .puncta import puncta
from .sparse import sparse
from .tissue import tissue

__all__ = [
    "DEFAULT_PAIR_SEPARATION_UM",
    "MIXED_SCENES",
    "SCENES",
    "BeadLayout",
    "actin",
    "bead_positions",
    "beads",
    "cells",
    "composite",
    "composite_layers",
    "er",
    "filaments",
    "membranes",
    "microtubules",
    "mitochondria",
    "mixed",
    "nuclei",
    "puncta",
    "render_beads",
    "sparse",
    "tissue",
]

#: The concrete structure classes (one structure each): what :func:`mixed` and
#: :func:`composite` draw from.
MIXED_SCENES: tuple[str, ...] = typing.get_args(StructureClass)


def mixed(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
) -> np.ndarray:
    """One of :data:`MIXED_SCENES`, chosen uniformly at random (arguments as in :func:`beads`)."""
    rng = np.random.default_rng(rng)
    name = MIXED_SCENES[rng.integers(len(MIXED_SCENES))]
    return SCENES[name](
        shape,
        pixel_size_um=pixel_size_um,
        rng=rng,
        density=density,
        pair_separation_um=pair_separation_um,
    )


#: Scene generators by name; all take ``(shape, *, pixel_size_um, rng, density,
#: pair_separation_um)`` and return a float64 dye map with a peak of 1.
SCENES: Mapping[str, Callable[..., np.ndarray]] = {
    "beads": beads,
    "filaments": filaments,
    "cells": cells,
    "nuclei": nuclei,
    "actin": actin,
    "microtubules": microtubules,
    "er": er,
    "mitochondria": mitochondria,
    "puncta": puncta,
    "membranes": membranes,
    "tissue": tissue,
    "sparse": sparse,
    "composite": composite,
    "mixed": mixed,
}
