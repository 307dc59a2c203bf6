"""The user's microscope, for "train for my microscope": optics, camera and the task.

Checked against physics once, here, with one-line messages: an NA above the immersion
medium's refractive index, a pixel more than 4× coarser than the optics' Nyquist
sampling, a super-resolution target NA that is not above the input's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._base import Strict
from .simulation import Camera

__all__ = ["IMMERSION_INDEX", "OBJECTIVES", "FineTuneConfig", "MicroscopeSpec"]

#: Refractive index of the immersion media an objective is made for.
IMMERSION_INDEX = {"air": 1.0, "water": 1.333, "silicone": 1.406, "glycerol": 1.47, "oil": 1.518}

#: Common objectives: label -> (magnification, NA, immersion).
OBJECTIVES = {
    "10x/0.3": (10, 0.3, "air"),
    "10x/0.45": (10, 0.45, "air"),
    "20x/0.75": (20, 0.75, "air"),
    "40x/0.95": (40, 0.95, "air"),
    "60x/1.4 oil": (60, 1.4, "oil"),
    "100x/1.45 oil": (100, 1.45, "oil"),
}

#: How much coarser than Nyquist (λ / 4 NA) a pixel may be before the optics are refused.
MAX_UNDERSAMPLING = 4.0


class MicroscopeSpec(Strict):
    """One microscope and what to train for it.

    ``task="denoise"``: the same optics in and out. ``task="sr2x"``: 2× finer pixels and a
    higher NA (``target_na``, default: the largest the immersion allows up to twice the
    input's) out. ``camera`` None: the generalists' default sCMOS (or one estimated from
    an image, :func:`napari_mscgm.training.microscope.camera_from_image`).
    """

    pixel_size_um: float = Field(gt=0, le=20, description="camera pixel at the sample")
    na: float = Field(gt=0, le=1.7)
    wavelength_um: float = Field(0.52, ge=0.3, le=1.2, description="emission wavelength")
    immersion: Literal["air", "water", "silicone", "glycerol", "oil"] = "air"
    task: Literal["denoise", "sr2x"] = "denoise"
    target_na: float | None = Field(None, gt=0, le=1.7)
    camera: Camera | None = None

    @model_validator(mode="after")
    def _physical(self) -> MicroscopeSpec:
        index = IMMERSION_INDEX[self.immersion]
        if self.na > index:
            raise ValueError(
                f"NA {self.na:g} is above the refractive index {index:g} of {self.immersion}: "
                "no objective can have it (choose the immersion the objective is made for)"
            )
        nyquist = self.wavelength_um / (4 * self.na)
        if self.pixel_size_um > MAX_UNDERSAMPLING * nyquist:
            raise ValueError(
                f"pixel {self.pixel_size_um:g} µm is more than {MAX_UNDERSAMPLING:g}× the "
                f"Nyquist pixel {nyquist:.3g} µm of NA {self.na:g} at {self.wavelength_um:g} µm; "
                "check the pixel size (µm at the sample, not on the camera)"
            )
        if self.task == "sr2x":
            target = self.resolved_target_na
            if target <= self.na:
                raise ValueError(
                    f"target NA {target:g} must be above the input NA {self.na:g} for "
                    "super-resolution"
                )
            if target > index:
                raise ValueError(
                    f"target NA {target:g} is above the refractive index {index:g} of "
                    f"{self.immersion}"
                )
        elif self.target_na is not None and self.target_na != self.na:
            raise ValueError("denoising keeps the optics: leave target_na out")
        return self

    @property
    def scale(self) -> int:
        return 2 if self.task == "sr2x" else 1

    @property
    def resolved_target_na(self) -> float:
        """The output's NA: the input's for denoising."""
        if self.task == "denoise":
            return self.na
        if self.target_na is not None:
            return self.target_na
        return round(min(2 * self.na, 0.95 * IMMERSION_INDEX[self.immersion]), 3)


class FineTuneConfig(Strict):
    """How much to simulate and train when fine-tuning a generalist for a microscope.

    The defaults fit a 2-core CPU in minutes; raise them on a GPU.
    """

    pairs: int = Field(200, ge=8, le=100_000, description="simulated training pairs")
    shape: int = Field(192, ge=64, le=1024, description="target pixels per simulated field")
    bridge_iterations: int = Field(300, ge=0)
    generator_iterations: int = Field(600, ge=0)
    crop: int = Field(96, ge=32)
    photons: tuple[float, float] = Field((10.0, 2000.0), description="input peak photons")
    validation: int = Field(8, ge=2)
    seed: int = Field(0, ge=0)
    workers: int = Field(1, ge=1, le=64)
