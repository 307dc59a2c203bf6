"""Validated configuration of the physical simulator: cameras, microscopes, photon budgets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    field_validator,
    model_validator,
)

from ._base import Strict
from .model import PhysicsConfig

__all__ = [
    "Camera",
    "Microscope",
    "PsfModel",
    "Range",
    "SceneName",
    "SimulationConfig",
    "StructureClass",
]

Range = tuple[float, float]
PsfModel = Literal["airy", "gaussian"]
#: The structure classes of :mod:`napari_mscgm.simulate.scenes`, one structure each.
StructureClass = Literal[
    "beads",
    "filaments",
    "cells",
    "nuclei",
    "actin",
    "microtubules",
    "er",
    "mitochondria",
    "puncta",
    "membranes",
    "tissue",
    "sparse",
]
#: What a scene may be: a structure class, an overlay of several (``composite``), or one
#: class chosen at random per pair (``mixed``).
SceneName = Literal[StructureClass, "composite", "mixed"]


class Camera(Strict):
    """A scientific camera (defaults: a typical 6.5 µm sCMOS)."""

    pixel_size_um: float = Field(6.5, gt=0, description="physical pixel pitch on the sensor")
    qe: float = Field(0.8, gt=0, le=1, description="quantum efficiency at the emission")
    read_noise_e: float = Field(1.5, ge=0, description="read noise, e- rms")
    gain_adu_per_e: float = Field(2.0, gt=0, description="conversion gain, ADU per e-")
    offset_adu: float = Field(100.0, ge=0, description="baseline in ADU")
    bit_depth: int = Field(16, ge=1, le=32)
    dark_e: float = Field(0.0, ge=0, description="dark electrons per pixel and exposure")

    @model_validator(mode="after")
    def _offset_in_range(self) -> Camera:
        if self.offset_adu >= 2**self.bit_depth - 1:
            raise ValueError(
                f"offset {self.offset_adu} ADU leaves no range in {self.bit_depth}-bit output"
            )
        return self


class Microscope(Strict):
    """An objective (NA, magnification) on a camera."""

    na: float = Field(gt=0, le=1.7, description="numerical aperture")
    magnification: float = Field(gt=0, description="total magnification onto the camera")
    camera: Camera = Camera()

    @property
    def pixel_size_um(self) -> float:
        """Camera pixel size at the sample, in µm."""
        return self.camera.pixel_size_um / self.magnification


Range = tuple[float, float]


class SimulationConfig(Strict):
    """Everything :func:`simulate_pair` needs (defaults: 10×/0.4 → 20×/0.75 at 520 nm)."""

    input: Microscope = Microscope(na=0.4, magnification=10)
    target: Microscope = Microscope(na=0.75, magnification=20)
    wavelength_um: float = Field(0.52, gt=0, le=2.0, description="emission wavelength")
    psf: PsfModel = "airy"
    oversample: int = Field(4, ge=1, le=16, description="fine pixels per target pixel and axis")
    scene: SceneName = "mixed"
    scene_density: float = Field(1.0, gt=0, le=20, description="object count multiplier")
    input_peak_photons: tuple[PositiveFloat, PositiveFloat] = (30.0, 1000.0)
    background_photons: tuple[NonNegativeFloat, NonNegativeFloat] = (1.0, 20.0)
    background_variation: float = Field(0.3, ge=0, le=1, description="relative smooth haze")
    target_photon_scale: float = Field(1.0, gt=0, description="target photons per input photon")
    target_background: bool = False
    ground_truth: Literal["expected", "acquired"] = "expected"

    @field_validator("input_peak_photons", "background_photons", mode="before")
    @classmethod
    def _scalar_is_fixed_range(cls, value: Any) -> Any:
        return (value, value) if isinstance(value, int | float) else value

    @field_validator("input_peak_photons", "background_photons")
    @classmethod
    def _ordered(cls, value: Range) -> Range:
        if value[0] > value[1]:
            raise ValueError(f"range {value} must be (low, high) with low <= high")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SimulationConfig:
        ratio = self.input.pixel_size_um / self.target.pixel_size_um
        if round(ratio) not in (1, 2, 4) or abs(ratio - round(ratio)) > 1e-6 * ratio:
            raise ValueError(
                f"input pixel ({self.input.pixel_size_um:g} µm) / target pixel "
                f"({self.target.pixel_size_um:g} µm) = {ratio:g} must be 1, 2 or 4, "
                "so that camera pixels are whole numbers of fine pixels"
            )
        nyquist = self.wavelength_um / (4 * max(self.input.na, self.target.na))
        if self.fine_pixel_size_um > nyquist * (1 + 1e-9):
            raise ValueError(
                f"fine pixel {self.fine_pixel_size_um:g} µm exceeds the Nyquist pixel "
                f"{nyquist:g} µm of the optics; raise oversample"
            )
        return self

    @property
    def scale(self) -> int:
        """Input pixel / target pixel: 1, 2 or 4."""
        return round(self.input.pixel_size_um / self.target.pixel_size_um)

    @property
    def fine_pixel_size_um(self) -> float:
        """Pixel of the grid the sample is drawn on: target pixel / ``oversample``."""
        return self.target.pixel_size_um / self.oversample

    @property
    def input_bin(self) -> int:
        """Fine pixels per input pixel and axis."""
        return self.scale * self.oversample

    @property
    def target_bin(self) -> int:
        """Fine pixels per target pixel and axis."""
        return self.oversample

    def physics(self) -> PhysicsConfig:
        """The :class:`~napari_mscgm.config.PhysicsConfig` of a model trained on this data."""

        return PhysicsConfig(
            input_pixel_size_um=self.input.pixel_size_um,
            target_pixel_size_um=self.target.pixel_size_um,
            input_na=self.input.na,
            target_na=self.target.na,
            emission_wavelength_um=self.wavelength_um,
        )
