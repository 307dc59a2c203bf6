"""Randomised acquisition: each pair's input drawn around its preset (:class:`Acquisition`).

What varies, and why a generalist model must cope with it: the input objective's NA, its
PSF (Airy, Gaussian-like, or slightly out of focus), the camera (QE, gain, offset, read
noise, hot pixels), uneven illumination (vignetting, on the sample: in the target too) and
a background gradient (in the input only, like the smooth haze).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..config.simulation import Acquisition, Camera, SimulationConfig
from ._random import uniform

__all__ = ["DrawnAcquisition", "draw_acquisition"]


@dataclass(frozen=True)
class DrawnAcquisition:
    """One pair's acquisition: the effective config and the field effects to apply."""

    config: SimulationConfig
    psf: str
    defocus_um: float
    gradient: float
    gradient_angle: float
    vignetting: float
    hot_pixel_fraction: float
    hot_pixel_electrons: float

    def record(self) -> dict:
        """What was drawn, for the pair's metadata."""
        fields = asdict(self)
        fields.pop("config")
        return {**fields, "input_na": self.config.input.na, "target_na": self.config.target.na,
                "input_camera": self.config.input.camera.model_dump()}  # fmt: skip

    def illumination(self, shape: tuple[int, int]) -> np.ndarray | None:
        """Relative excitation over the field (1 at the centre), or None when even."""
        if self.vignetting <= 0:
            return None
        y = np.linspace(-1.0, 1.0, shape[0])[:, None]
        x = np.linspace(-1.0, 1.0, shape[1])[None, :]
        return 1.0 - self.vignetting * (y**2 + x**2) / 2.0  # 1 - v at the corners

    def background_ramp(self, shape: tuple[int, int]) -> np.ndarray:
        """A linear background ramp across the field, mean 1, ``1 ± gradient`` at the edges."""
        y = np.linspace(-1.0, 1.0, shape[0])[:, None]
        x = np.linspace(-1.0, 1.0, shape[1])[None, :]
        a = self.gradient_angle
        return 1.0 + self.gradient * (np.sin(a) * y + np.cos(a) * x) / np.sqrt(2)

    def dark_electrons(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Dark electrons per camera pixel: zero but for the hot pixels."""
        dark = np.zeros(shape)
        hot = rng.random(shape) < self.hot_pixel_fraction
        dark[hot] = self.hot_pixel_electrons * rng.lognormal(0.0, 0.5, int(hot.sum()))
        return dark


def draw_acquisition(config: SimulationConfig, rng: np.random.Generator) -> DrawnAcquisition:
    """Draw one pair's acquisition from ``config.acquisition`` (which must be set)."""
    acq: Acquisition = config.acquisition
    factor = float(uniform(rng, acq.na_factor))
    camera = config.input.camera.model_copy(
        update={
            "qe": float(uniform(rng, acq.qe)),
            "gain_adu_per_e": float(uniform(rng, acq.gain_adu_per_e)),
            "offset_adu": float(uniform(rng, acq.offset_adu)),
            "read_noise_e": float(uniform(rng, acq.read_noise_e)),
        }
    )
    Camera.model_validate(camera.model_dump())  # the drawn camera is a valid camera
    input_na = round(config.input.na * factor, 4)  # rounded: the PSF cache stays small
    update = {"input": config.input.model_copy(update={"na": input_na, "camera": camera})}
    if acq.same_objective:
        update["target"] = config.target.model_copy(update={"na": input_na})
    psf = str(acq.psf_models[int(rng.integers(len(acq.psf_models)))])
    n = 1.0 if input_na < 1 else 1.518
    depth_of_field = n * config.wavelength_um / input_na**2
    defocus = float(uniform(rng, acq.defocus_dof)) * depth_of_field if psf == "defocus" else 0.0
    return DrawnAcquisition(
        config=config.model_copy(update=update),
        psf=psf,
        defocus_um=round(defocus, 2),
        gradient=float(uniform(rng, acq.gradient)),
        gradient_angle=float(rng.uniform(0, 2 * np.pi)),
        vignetting=float(uniform(rng, acq.vignetting)),
        hot_pixel_fraction=float(uniform(rng, acq.hot_pixel_fraction)),
        hot_pixel_electrons=float(uniform(rng, acq.hot_pixel_electrons)),
    )
