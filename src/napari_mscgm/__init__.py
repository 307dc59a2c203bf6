"""napari-mscgm: fluorescence microscopy restoration with MSCGM.

Multi-scale Conditional Generative Modeling (Huang et al., arXiv 2407.05259):
a Brownian bridge diffusion restores the coarsest Haar wavelet band, and
conditional GAN generators restore the detail bands scale by scale.

>>> from napari_mscgm import list_models, load_model, restore
>>> model = load_model("beads-sr2x")                     # doctest: +SKIP
>>> out = restore(image, model, steps=20, seed=0)         # doctest: +SKIP
"""

__version__ = "0.1.0"

from .config import ModelConfig
from .errors import InputError, MSCGMError, OutputError, ResourceError, WeightsError
from .model import MSCGM, list_models, load_model, save_model
from .pipeline import MeanStd, restore

__all__ = [
    "MSCGM",
    "InputError",
    "MSCGMError",
    "MeanStd",
    "ModelConfig",
    "OutputError",
    "ResourceError",
    "WeightsError",
    "__version__",
    "list_models",
    "load_model",
    "restore",
    "save_model",
]
