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
    "Acquisition",
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
#: PSF models an input acquisition may be drawn with (``defocus``: an Airy pattern out of focus).
InputPsfModel = Literal["airy", "gaussian", "defocus"]
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


def _ordered_ranges(model: Strict) -> None:
    """Every ``Range`` field of ``model`` must be (low, high) with low <= high."""
    for name, value in model:
        if (
            isinstance(value, tuple)
            and len(value) == 2
            and all(isinstance(v, int | float) for v in value)
        ):
            if value[0] > value[1]:
                raise ValueError(f"{name} {value} must be (low, high) with low <= high")


class Acquisition(Strict):
    """Random variation of the input's acquisition around a preset, drawn anew for every pair.

    A model trained on it meets microscopes it was not made for without failing: a
    slightly different NA, a defocused or Gaussian-like PSF, uneven illumination, a
    background gradient, hot pixels and another camera. Ranges are drawn uniformly;
    ``(x, x)`` fixes a value. The target (the ground truth) keeps the preset's ideal
    optics; uneven illumination acts on the sample, so it is in the target too.
    """

    na_factor: Range = Field((0.85, 1.15), description="input NA times this")
    same_objective: bool = Field(
        False, description="the target shares the input's drawn NA and PSF (denoising)"
    )
    psf_models: tuple[InputPsfModel, ...] = Field(("airy", "gaussian", "defocus"), min_length=1)
    defocus_dof: Range = Field(
        (0.2, 0.6), description="focus offset of a 'defocus' PSF, in depths of field n λ / NA²"
    )
    gradient: Range = Field((0.0, 0.5), description="background ramp across the field, relative")
    vignetting: Range = Field((0.0, 0.3), description="illumination fall-off at the corners")
    hot_pixel_fraction: Range = Field((0.0, 5e-4), description="camera pixels with hot dark")
    hot_pixel_electrons: Range = Field((50.0, 3000.0), description="their dark electrons")
    qe: Range = Field((0.6, 0.95))
    gain_adu_per_e: Range = Field((0.5, 4.0))
    offset_adu: Range = Field((50.0, 400.0))
    read_noise_e: Range = Field((0.7, 3.0))

    @model_validator(mode="after")
    def _ranges(self) -> Acquisition:
        _ordered_ranges(self)
        if not (0 < self.na_factor[0] and self.qe[1] <= 1 and self.gain_adu_per_e[0] > 0):
            raise ValueError("na_factor, qe and gain must be positive (qe at most 1)")
        if self.hot_pixel_fraction[1] > 0.1 or min(self.offset_adu + self.read_noise_e) < 0:
            raise ValueError("hot pixels at most 10 %; offset and read noise non-negative")
        return self


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
    classes: tuple[StructureClass, ...] | None = Field(
        None, min_length=1, description="what 'mixed' and 'composite' draw from (default: all)"
    )
    composite_fraction: float = Field(
        0.0, ge=0, le=1, description="'mixed': this share of pairs overlays several classes"
    )
    acquisition: Acquisition | None = Field(
        None, description="draw the input's acquisition around this preset for every pair"
    )

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
        na_max = self.input.na * (self.acquisition.na_factor[1] if self.acquisition else 1.0)
        nyquist = self.wavelength_um / (4 * max(na_max, self.target.na))
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
