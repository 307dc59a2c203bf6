"""napari-mscgm: fluorescence microscopy restoration with MSCGM.

Multi-scale Conditional Generative Modeling (Huang et al., arXiv 2407.05259):
a Brownian bridge diffusion restores the coarsest Haar wavelet band, and
conditional GAN generators restore the detail bands scale by scale.

>>> from napari_mscgm import list_models, load_model, restore
>>> model = load_model("beads-sr2x")                     # doctest: +SKIP
>>> out = restore(image, model, steps=20, seed=0)         # doctest: +SKIP

The names below are imported on first use, so ``import napari_mscgm`` (and napari's
sample-data menu and writer) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name → the module that defines it.
_EXPORTS = {
    "MSCGM": "napari_mscgm.core.mscgm",
    "InputError": "napari_mscgm.errors",
    "MSCGMError": "napari_mscgm.errors",
    "MeanStd": "napari_mscgm.restoration",
    "ModelConfig": "napari_mscgm.config",
    "OutputError": "napari_mscgm.errors",
    "ResourceError": "napari_mscgm.errors",
    "RestoreOptions": "napari_mscgm.config",
    "WeightsError": "napari_mscgm.errors",
    "check_consistency": "napari_mscgm.restoration.consistency",
    "export_bioimageio": "napari_mscgm.model_io.bioimageio",
    "list_models": "napari_mscgm.model_io.catalog",
    "load_model": "napari_mscgm.model_io.weights",
    "restore": "napari_mscgm.restoration",
    "save_model": "napari_mscgm.model_io.weights",
}

__all__ = [
    "MSCGM",
    "InputError",
    "MSCGMError",
    "MeanStd",
    "ModelConfig",
    "OutputError",
    "ResourceError",
    "RestoreOptions",
    "WeightsError",
    "__version__",
    "check_consistency",
    "export_bioimageio",
    "list_models",
    "load_model",
    "restore",
    "save_model",
]

if TYPE_CHECKING:
    from .config import ModelConfig, RestoreOptions
    from .core.mscgm import MSCGM
    from .errors import InputError, MSCGMError, OutputError, ResourceError, WeightsError
    from .model_io.bioimageio import export_bioimageio
    from .model_io.catalog import list_models
    from .model_io.weights import load_model, save_model
    from .restoration import MeanStd, restore
    from .restoration.consistency import check_consistency


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'napari_mscgm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # import once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
