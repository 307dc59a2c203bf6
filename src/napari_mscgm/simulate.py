"""Physical simulator of paired widefield fluorescence images (numpy + scipy only).

One sample is imaged twice: by a low-resolution *input* microscope (default
10×/0.4 NA, 0.65 µm pixels) and by a high-resolution *target* microscope
(default 20×/0.75 NA, 0.325 µm pixels), both at the emission wavelength
(default 0.52 µm) on a 6.5 µm sCMOS camera.

Pipeline of :func:`simulate_pair`:

1. **Sample.** A fluorophore map is drawn on a *fine grid* whose pixel is the
   target pixel divided by ``oversample``. Each fine pixel holds the amount of
   label in its area (sub-pixel objects are splatted so that mass and centroid
   are exact), so the map is a sum of point sources.
2. **Optics.** The map is convolved with each microscope's in-focus PSF
   (Airy / Born–Wolf ``[2 J1(v)/v]^2``, ``v = 2π NA r/λ``, or its Gaussian
   approximation ``σ = 0.21 λ/NA``), integrated over each fine pixel. The
   grid is padded by the PSF radius beforehand, so edges see the light of
   objects just outside the field.
3. **Camera.** Fine pixels are summed into camera pixels (exact pixel
   integration), a smooth background is added, and the input passes through
   the sCMOS model of :func:`camera_noise`.

Conventions
-----------
- Lengths are in µm, arrays are ``(y, x)``; pixel ``i`` covers
  ``[i, i + 1) * pixel_size``.
- **Brightness.** The input's peak expected signal (before background) is
  drawn log-uniformly from ``input_peak_photons``. Every fluorophore then
  sends the *same* number of detected photons to both microscopes, times
  ``target_photon_scale`` (default 1: an equal photon budget; set it to e.g.
  ``(NA_t/NA_i)**2`` for collection efficiency or ≫1 for a long exposure).
  Both PSFs sum to 1 and binning sums, so total signal photons agree.
- **Ground truth.** ``high`` is by default the noise-free expected photon
  image of the target microscope without background (the in-focus structure
  a restoration should recover); ``ground_truth="acquired"`` makes it a noisy
  camera acquisition in ADU instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    field_validator,
    model_validator,
)
from scipy import ndimage, special
from scipy.signal import fftconvolve

from .errors import InputError

if TYPE_CHECKING:
    from .config import PhysicsConfig

__all__ = [
    "AIRY_FWHM_FACTOR",
    "DEFAULT_PAIR_SEPARATION_UM",
    "GAUSSIAN_SIGMA_FACTOR",
    "MIXED_SCENES",
    "PRESETS",
    "SCENES",
    "BeadLayout",
    "Camera",
    "Microscope",
    "SimulatedPair",
    "SimulationConfig",
    "airy_psf",
    "bead_positions",
    "beads",
    "camera_noise",
    "cells",
    "filaments",
    "fwhm_um",
    "gaussian_psf",
    "integrate_pixels",
    "mixed",
    "preset_config",
    "render_beads",
    "simulate_pair",
    "simulate_pairs",
]

#: FWHM of the Airy pattern in units of λ/NA (``[2 J1(v)/v]^2 = 1/2`` at ``v = 1.6163``).
AIRY_FWHM_FACTOR = 2 * 1.616339948 / (2 * math.pi)
#: σ of the Gaussian approximation of the Airy pattern in units of λ/NA.
GAUSSIAN_SIGMA_FACTOR = 0.21
#: Default PSF radius in units of λ/NA; the Airy pattern keeps ~97.5 % of its energy inside.
PSF_RADIUS_FACTOR = 4.0

PsfModel = Literal["airy", "gaussian"]
SceneName = Literal["beads", "filaments", "cells", "mixed"]
RngLike = np.random.Generator | int | None


# --------------------------------------------------------------------------------------------
# Optics
# --------------------------------------------------------------------------------------------


def fwhm_um(*, na: float, wavelength_um: float, psf: PsfModel = "airy") -> float:
    """Full width at half maximum of the in-focus PSF (before pixel integration).

    Parameters
    ----------
    na : float
        Numerical aperture.
    wavelength_um : float
        Emission wavelength in µm.
    psf : {"airy", "gaussian"}
        PSF model.

    Returns
    -------
    float
        ``0.5145 λ/NA`` (Airy) or ``2.3548 · 0.21 λ/NA`` (Gaussian), in µm.
    """
    _require_positive(na=na, wavelength_um=wavelength_um)
    if psf == "airy":
        return AIRY_FWHM_FACTOR * wavelength_um / na
    if psf == "gaussian":
        return 2 * math.sqrt(2 * math.log(2)) * GAUSSIAN_SIGMA_FACTOR * wavelength_um / na
    raise InputError(f"unknown PSF model {psf!r}; expected 'airy' or 'gaussian'")


def _psf_size(na: float, wavelength_um: float, pixel_size_um: float, size: int | None) -> int:
    if size is None:
        return 2 * math.ceil(PSF_RADIUS_FACTOR * wavelength_um / na / pixel_size_um) + 1
    if int(size) != size or size < 1 or size % 2 == 0:
        raise InputError(f"PSF size must be a positive odd integer (centred kernel), got {size}")
    return int(size)


def airy_psf(
    *,
    na: float,
    wavelength_um: float,
    pixel_size_um: float,
    size: int | None = None,
    supersample: int | None = None,
) -> np.ndarray:
    """In-focus widefield PSF (Airy / Born–Wolf), integrated over square pixels.

    ``I(r) = [2 J1(v) / v]^2`` with ``v = 2π NA r / λ``, averaged over
    ``supersample × supersample`` points per pixel, so the sampled PSF stays
    accurate at coarse pixels (a point-sampled Airy at 0.65 µm would not be).

    Parameters
    ----------
    na : float
        Numerical aperture.
    wavelength_um : float
        Emission wavelength in µm.
    pixel_size_um : float
        Pixel size at the sample in µm.
    size : int, optional
        Odd side length in pixels. Default: a radius of ``4 λ/NA``.
    supersample : int, optional
        Sub-samples per pixel and axis. Default: enough for a sub-sample of at
        most ``λ/(20 NA)`` (a tenth of the FWHM).

    Returns
    -------
    ndarray of float64, shape (size, size)
        The PSF, centred on the middle pixel, summing to 1 (the energy beyond
        the truncation radius is redistributed).
    """
    _require_positive(na=na, wavelength_um=wavelength_um, pixel_size_um=pixel_size_um)
    size = _psf_size(na, wavelength_um, pixel_size_um, size)
    if supersample is None:
        supersample = min(31, max(1, math.ceil(pixel_size_um / (0.05 * wavelength_um / na))))
    elif int(supersample) != supersample or supersample < 1:
        raise InputError(f"supersample must be a positive integer, got {supersample}")
    return _airy_cached(na, wavelength_um, pixel_size_um, size, int(supersample)).copy()


@lru_cache(maxsize=16)
def _airy_cached(na: float, wavelength_um: float, pixel_size_um: float, size: int, s: int):
    # Sub-sample centres, in pixels from the kernel centre (midpoint rule per pixel).
    coord = (np.arange(size * s) + 0.5) / s - size / 2
    v = (2 * np.pi * na * pixel_size_um / wavelength_um) * np.hypot(coord[:, None], coord[None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        intensity = np.where(v > 0, (2 * special.j1(v) / v) ** 2, 1.0)
    psf = intensity.reshape(size, s, size, s).sum(axis=(1, 3))
    psf /= psf.sum()
    psf.setflags(write=False)
    return psf


def gaussian_psf(
    *, na: float, wavelength_um: float, pixel_size_um: float, size: int | None = None
) -> np.ndarray:
    """Gaussian approximation of the Airy PSF, ``σ = 0.21 λ/NA``, integrated over pixels.

    Pixel integration is exact (differences of the error function).

    Parameters
    ----------
    na, wavelength_um, pixel_size_um, size
        As in :func:`airy_psf`.

    Returns
    -------
    ndarray of float64, shape (size, size)
        The PSF, centred, summing to 1.
    """
    _require_positive(na=na, wavelength_um=wavelength_um, pixel_size_um=pixel_size_um)
    size = _psf_size(na, wavelength_um, pixel_size_um, size)
    sigma_px = GAUSSIAN_SIGMA_FACTOR * wavelength_um / na / pixel_size_um
    edges = np.arange(size + 1) - size / 2
    profile = np.diff(special.erf(edges / (np.sqrt(2) * sigma_px)))
    psf = np.outer(profile, profile)
    return psf / psf.sum()


_PSF_MODELS: dict[str, Callable[..., np.ndarray]] = {"airy": airy_psf, "gaussian": gaussian_psf}


@lru_cache(maxsize=16)
def _psf_float32(kind: str, na: float, wavelength_um: float, pixel_size_um: float) -> np.ndarray:
    psf = _PSF_MODELS[kind](na=na, wavelength_um=wavelength_um, pixel_size_um=pixel_size_um)
    psf = psf.astype(np.float32)
    psf.setflags(write=False)
    return psf


# --------------------------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------------------------


def integrate_pixels(image: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor × factor`` blocks: the photons a ``factor``-times larger pixel collects.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Photons (or fluorophores) per small pixel.
    factor : int
        Integer bin size; must divide ``H`` and ``W``.

    Returns
    -------
    ndarray, shape (H // factor, W // factor)
    """
    image = np.asarray(image)
    if int(factor) != factor or factor < 1:
        raise InputError(f"bin factor must be a positive integer, got {factor}")
    factor = int(factor)
    if image.ndim != 2 or image.shape[0] % factor or image.shape[1] % factor:
        raise InputError(f"image shape {image.shape} is not 2D or not divisible by {factor}")
    if factor == 1:
        return image.copy()
    h, w = image.shape
    return image.reshape(h // factor, factor, w // factor, factor).sum(axis=(1, 3))


def camera_noise(
    photons: np.ndarray,
    *,
    rng: RngLike,
    qe: float,
    read_noise_e: float,
    gain_adu_per_e: float,
    offset_adu: float,
    bit_depth: int,
    dark_e: float = 0.0,
) -> np.ndarray:
    """Record expected photon counts with an sCMOS/CCD camera.

    ``electrons = Poisson(qe · photons + dark_e)``;
    ``ADU = gain · (electrons + N(0, read_noise_e)) + offset``, rounded and
    clipped to ``[0, 2**bit_depth - 1]``. Hence, before clipping,
    ``E[ADU] = gain (qe p + dark) + offset`` and
    ``Var[ADU] = gain² (qe p + dark + read²)`` (+1/12 from rounding).

    Parameters
    ----------
    photons : ndarray
        Expected photons reaching each pixel (≥ 0).
    rng : numpy.random.Generator or int or None
        Random source.
    qe : float
        Quantum efficiency in (0, 1].
    read_noise_e : float
        Read noise, e⁻ rms.
    gain_adu_per_e : float
        Conversion gain, ADU per e⁻.
    offset_adu : float
        Baseline (bias) in ADU.
    bit_depth : int
        ADC bit depth.
    dark_e : float
        Mean dark electrons per pixel and exposure.

    Returns
    -------
    ndarray of float64
        Integer-valued ADU, same shape as ``photons``.
    """
    photons = np.asarray(photons, dtype=np.float64)
    if not np.all(np.isfinite(photons)) or (photons.size and photons.min() < 0):
        raise InputError("photons must be finite and non-negative")
    if not 0 < qe <= 1:
        raise InputError(f"qe must be in (0, 1], got {qe}")
    if read_noise_e < 0 or dark_e < 0 or gain_adu_per_e <= 0:
        raise InputError("read_noise_e and dark_e must be >= 0 and gain_adu_per_e > 0")
    if int(bit_depth) != bit_depth or not 1 <= bit_depth <= 32:
        raise InputError(f"bit_depth must be an integer in [1, 32], got {bit_depth}")
    rng = np.random.default_rng(rng)
    electrons = rng.poisson(qe * photons + dark_e).astype(np.float64)
    if read_noise_e > 0:
        electrons += rng.normal(0.0, read_noise_e, size=photons.shape)
    adu = np.rint(gain_adu_per_e * electrons + offset_adu)
    return np.clip(adu, 0, 2 ** int(bit_depth) - 1)


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Camera(_Strict):
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

    def noise_parameters(self) -> dict[str, float]:
        """The keyword arguments of :func:`camera_noise` this camera stands for."""
        return self.model_dump(exclude={"pixel_size_um"})

    def acquire(self, photons: np.ndarray, rng: RngLike) -> np.ndarray:
        """Expected photons per pixel → ADU (see :func:`camera_noise`)."""
        return camera_noise(photons, rng=rng, **self.noise_parameters())


class Microscope(_Strict):
    """An objective (NA, magnification) on a camera."""

    na: float = Field(gt=0, le=1.7, description="numerical aperture")
    magnification: float = Field(gt=0, description="total magnification onto the camera")
    camera: Camera = Camera()

    @property
    def pixel_size_um(self) -> float:
        """Camera pixel size at the sample, in µm."""
        return self.camera.pixel_size_um / self.magnification


Range = tuple[float, float]


class SimulationConfig(_Strict):
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

    @property
    def input_fwhm_um(self) -> float:
        """FWHM of the input PSF in µm."""
        return fwhm_um(na=self.input.na, wavelength_um=self.wavelength_um, psf=self.psf)

    @property
    def target_fwhm_um(self) -> float:
        """FWHM of the target PSF in µm."""
        return fwhm_um(na=self.target.na, wavelength_um=self.wavelength_um, psf=self.psf)

    def physics(self) -> PhysicsConfig:
        """The :class:`napari_mscgm.config.PhysicsConfig` of a model trained on this data."""
        from .config import PhysicsConfig

        return PhysicsConfig(
            input_pixel_size_um=self.input.pixel_size_um,
            target_pixel_size_um=self.target.pixel_size_um,
            input_na=self.input.na,
            target_na=self.target.na,
            emission_wavelength_um=self.wavelength_um,
        )


#: Named configurations; all share the default 10×/0.4 → 20×/0.75, 520 nm physics.
PRESETS: dict[str, SimulationConfig] = {
    "beads": SimulationConfig(scene="beads", background_photons=(0.5, 10.0)),
    "filaments": SimulationConfig(scene="filaments"),
    "cells": SimulationConfig(scene="cells"),
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


# --------------------------------------------------------------------------------------------
# Drawing on the fine grid
# --------------------------------------------------------------------------------------------


class _Canvas:
    """Collects splats (flat index, weight) and dense patches, rendered with one bincount."""

    def __init__(self, shape: tuple[int, int], pixel_size_um: float):
        self.shape = shape
        self.px = pixel_size_um
        self.indices: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        self.dense = np.zeros(shape)

    def _add(self, ys: np.ndarray, xs: np.ndarray, ws: np.ndarray) -> None:
        h, w = self.shape
        ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        self.indices.append((ys[ok] * w + xs[ok]).ravel())
        self.weights.append(ws[ok].ravel())

    def points(self, y_um: np.ndarray, x_um: np.ndarray, mass: np.ndarray) -> None:
        """Point masses, split bilinearly between the 4 nearest pixels (keeps the centroid)."""
        y = np.asarray(y_um, float).ravel() / self.px - 0.5
        x = np.asarray(x_um, float).ravel() / self.px - 0.5
        mass = np.broadcast_to(mass, y.shape).ravel()
        y0, x0 = np.floor(y), np.floor(x)
        fy, fx = y - y0, x - x0
        y0, x0 = y0.astype(np.intp), x0.astype(np.intp)
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                self._add(y0 + dy, x0 + dx, mass * wy * wx)

    def blobs(
        self,
        y_um: np.ndarray,
        x_um: np.ndarray,
        mass: np.ndarray,
        radius_um: np.ndarray,
        profile: Literal["sphere", "disc"],
    ) -> None:
        """Round objects of total ``mass``: projected spheres or flat discs.

        Objects under one pixel in radius become points (their shape is far below
        any resolution here). Larger ones are drawn around the pixel below their
        centre and then split bilinearly like a point, which anti-aliases them and
        keeps both mass and centroid exact.
        """
        y_um, x_um = np.asarray(y_um, float).ravel(), np.asarray(x_um, float).ravel()
        mass = np.broadcast_to(mass, y_um.shape).ravel()
        r = np.broadcast_to(np.asarray(radius_um, float) / self.px, y_um.shape).ravel()
        small = r < 1
        if small.any():
            self.points(y_um[small], x_um[small], mass[small])
        big = ~small
        if not big.any():
            return
        y = y_um[big] / self.px - 0.5
        x = x_um[big] / self.px - 0.5
        r, m = r[big], mass[big]
        half = math.ceil(r.max() + 0.5)
        offsets = np.arange(-half, half + 1)
        d2 = offsets[:, None] ** 2 + offsets[None, :] ** 2  # symmetric: centroid at the centre
        rr = r[:, None, None]
        if profile == "sphere":  # projected thickness of a ball
            w = np.sqrt(np.clip(rr**2 - d2, 0, None))
        else:  # a flat disc (soft edge); discs swept along a line project like a cylinder
            w = np.clip(rr + 0.5 - np.sqrt(d2), 0, 1)
        w *= (m / w.sum(axis=(1, 2)))[:, None, None]
        y0, x0 = np.floor(y), np.floor(x)
        fy, fx = (y - y0)[:, None, None], (x - x0)[:, None, None]
        k = len(offsets)
        split = np.zeros((len(w), k + 1, k + 1))
        split[:, :k, :k] += w * ((1 - fy) * (1 - fx))
        split[:, :k, 1:] += w * ((1 - fy) * fx)
        split[:, 1:, :k] += w * (fy * (1 - fx))
        split[:, 1:, 1:] += w * (fy * fx)
        spread = np.arange(-half, half + 2)
        ys = y0.astype(np.intp)[:, None, None] + spread[None, :, None]
        xs = x0.astype(np.intp)[:, None, None] + spread[None, None, :]
        ys, xs = np.broadcast_arrays(ys, xs)
        self._add(ys, xs, split)

    def path(
        self,
        y_um: np.ndarray,
        x_um: np.ndarray,
        valid: np.ndarray,
        density: np.ndarray,
        width_um: float | np.ndarray,
    ) -> None:
        """Lines of areal label ``density`` and ``width_um`` along (n, steps) point arrays.

        Each step carries ``density · width · step length``; thin lines are drawn
        as anti-aliased points, wide ones (tubes) as swept discs.
        """
        step = np.hypot(np.gradient(y_um, axis=-1), np.gradient(x_um, axis=-1))
        width = np.broadcast_to(np.asarray(width_um, float), y_um.shape)
        mass = np.broadcast_to(density, y_um.shape) * width * step
        self.blobs(y_um[valid], x_um[valid], mass[valid], width[valid] / 2, "disc")

    def patch(self, y0: int, x0: int, values: np.ndarray) -> None:
        """Add a dense patch whose top-left pixel is (y0, x0), clipped to the canvas."""
        h, w = self.shape
        ph, pw = values.shape
        ya, xa = max(y0, 0), max(x0, 0)
        yb, xb = min(y0 + ph, h), min(x0 + pw, w)
        if ya < yb and xa < xb:
            self.dense[ya:yb, xa:xb] += values[ya - y0 : yb - y0, xa - x0 : xb - x0]

    def render(self) -> np.ndarray:
        """The density map, scaled to a peak of 1 (a blank canvas stays 0)."""
        h, w = self.shape
        image = self.dense
        if self.indices:
            idx, wts = np.concatenate(self.indices), np.concatenate(self.weights)
            image += np.bincount(idx, weights=wts, minlength=h * w).reshape(h, w)
        peak = image.max()
        return image / peak if peak > 0 else image


def _uniform(rng: np.random.Generator, bounds: Range, n: int | None = None):
    return rng.uniform(bounds[0], bounds[1], n)


def _loguniform(rng: np.random.Generator, bounds: Range, n: int | None = None):
    draw = np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), n))
    return np.where(bounds[0] == bounds[1], bounds[0], draw)  # exact for a fixed value


def _extent_um(shape: tuple[int, int], pixel_size_um: float) -> tuple[float, float]:
    if len(shape) != 2 or min(shape) < 1:
        raise InputError(f"scene shape must be 2 positive integers, got {shape}")
    _require_positive(pixel_size_um=pixel_size_um)
    return shape[0] * pixel_size_um, shape[1] * pixel_size_um


def _persistent_walks(
    rng: np.random.Generator,
    start_um: np.ndarray,
    angle: np.ndarray,
    n_steps: int,
    step_um: float,
    persistence_um: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2D worm-like chains: tangent correlation ``<cos Δθ(s)> = exp(-s / persistence)``.

    Returns y and x of shape (n, n_steps) in µm, and the tangent angles.
    """
    kicks = rng.normal(size=(len(angle), n_steps)) * np.sqrt(2 * step_um / persistence_um)[:, None]
    kicks[:, 0] = 0
    theta = angle[:, None] + np.cumsum(kicks, axis=1)
    y = start_um[:, 0:1] + step_um * np.cumsum(np.sin(theta), axis=1)
    x = start_um[:, 1:2] + step_um * np.cumsum(np.cos(theta), axis=1)
    return y, x, theta


def _smooth_modulation(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, amount):
    """1 + ``amount`` × unit-variance noise smoothed along the last axis (labelling density)."""
    noise = ndimage.gaussian_filter1d(rng.normal(size=shape), sigma, axis=-1, mode="wrap")
    noise /= noise.std() + 1e-12
    return np.clip(1 + amount * noise, 0.2, None)


# --------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------

#: FWHMs of the default target and input optics: the band of separations only the target resolves.
DEFAULT_PAIR_SEPARATION_UM: Range = (
    AIRY_FWHM_FACTOR * 0.52 / 0.75,
    AIRY_FWHM_FACTOR * 0.52 / 0.4,
)


class BeadLayout(NamedTuple):
    """Beads of a :func:`beads` scene.

    Attributes
    ----------
    positions_um : ndarray, shape (n, 2)
        Centres ``(y, x)`` in µm from the grid's top-left corner.
    diameters_um : ndarray, shape (n,)
    brightness : ndarray, shape (n,)
        Relative amount of dye (∝ volume, with labelling spread).
    pairs : ndarray of int, shape (p, 2)
        Indices of the deliberately close pairs.
    """

    positions_um: np.ndarray
    diameters_um: np.ndarray
    brightness: np.ndarray
    pairs: np.ndarray


def bead_positions(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    diameter_um: Range = (0.1, 0.2),
    beads_per_100um2: float = 1.5,
    pairs_per_100um2: float = 0.5,
) -> BeadLayout:
    """Draw a bead layout: isolated beads plus close pairs.

    Pair separations are uniform in ``pair_separation_um`` (by default between
    the target and the input FWHM: resolved by the target, not by the input);
    at least one pair is always drawn.

    Parameters
    ----------
    shape : tuple of int
        Grid shape in pixels.
    pixel_size_um : float
        Grid pixel in µm.
    rng : numpy.random.Generator or int or None
        Random source.
    density : float
        Multiplier of the bead and pair counts.
    pair_separation_um : (float, float)
        Range of centre-to-centre distances of the close pairs.
    diameter_um : (float, float)
        Range of bead diameters.
    beads_per_100um2, pairs_per_100um2 : float
        Mean counts per 100 µm² at ``density=1``.

    Returns
    -------
    BeadLayout
    """
    rng = np.random.default_rng(rng)
    height, width = _extent_um(shape, pixel_size_um)
    if not 0 < pair_separation_um[0] <= pair_separation_um[1]:
        raise InputError(f"pair_separation_um {pair_separation_um} must be 0 < low <= high")
    area = height * width
    n_single = rng.poisson(density * beads_per_100um2 * area / 100)
    n_pairs = max(1, rng.poisson(density * pairs_per_100um2 * area / 100))
    extent = np.array([height, width])
    singles = rng.uniform(0, 1, (n_single, 2)) * extent
    centres = rng.uniform(0, 1, (n_pairs, 2)) * extent
    angle = rng.uniform(0, np.pi, n_pairs)
    half = _uniform(rng, pair_separation_um, n_pairs)[:, None] / 2
    offset = half * np.stack([np.sin(angle), np.cos(angle)], axis=1)
    positions = np.concatenate([singles, centres - offset, centres + offset])
    n = len(positions)
    diameters = _uniform(rng, diameter_um, n)
    brightness = (diameters / np.mean(diameter_um)) ** 3 * rng.lognormal(0, 0.2, n)
    first = n_single + np.arange(n_pairs)
    return BeadLayout(positions, diameters, brightness, np.stack([first, first + n_pairs], axis=1))


def render_beads(layout: BeadLayout, shape: tuple[int, int], *, pixel_size_um: float) -> np.ndarray:
    """Draw a :class:`BeadLayout` as projected spheres; float64 map with a peak of 1."""
    _extent_um(shape, pixel_size_um)
    canvas = _Canvas(tuple(shape), pixel_size_um)
    y, x = layout.positions_um[:, 0], layout.positions_um[:, 1]
    canvas.blobs(y, x, layout.brightness, layout.diameters_um / 2, "sphere")
    return canvas.render()


def beads(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
) -> np.ndarray:
    """Sub-diffraction beads (100–200 nm) with random brightness, including close pairs.

    ``render_beads(bead_positions(...), ...)`` with the same arguments and seed.

    Parameters
    ----------
    shape : tuple of int
        Grid shape in pixels.
    pixel_size_um : float
        Grid pixel in µm.
    rng : numpy.random.Generator or int or None
        Random source.
    density : float
        Multiplier of the object counts.
    pair_separation_um : (float, float)
        Separations the scene deliberately populates (see :func:`bead_positions`).

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    layout = bead_positions(
        shape,
        pixel_size_um=pixel_size_um,
        rng=rng,
        density=density,
        pair_separation_um=pair_separation_um,
    )
    return render_beads(layout, shape, pixel_size_um=pixel_size_um)


def _draw_filaments(
    canvas: _Canvas,
    rng: np.random.Generator,
    start_um: np.ndarray,
    angle: np.ndarray,
    *,
    length_um: np.ndarray,
    persistence_um: Range,
    width_um: float,
    density: np.ndarray,
    pair_separation_um: Range,
    bundle_fraction: float,
    keep: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> None:
    """Persistent random walks drawn as thin lines; some get a parallel partner.

    ``keep(y, x, rows)`` tells which points of filaments ``rows`` lie in their
    region; a filament ends where it first leaves it.
    """
    n = len(angle)
    if n == 0:
        return
    step = canvas.px / 2  # two samples per pixel: a smooth, gap-free line
    n_steps = max(2, math.ceil(length_um.max() / step))
    persistence = _uniform(rng, persistence_um, n)
    y, x, theta = _persistent_walks(rng, start_um, angle, n_steps, step, persistence)
    valid = np.arange(n_steps) < (length_um / step)[:, None]
    if keep is not None:  # stop each filament where it first leaves its region
        valid &= np.cumprod(keep(y, x, np.arange(n)), axis=1).astype(bool)
    linear = density[:, None] * _smooth_modulation(rng, y.shape, 1.0 / step, 0.25)
    canvas.path(y, x, valid, linear, width_um)
    # Bundled neighbours at a sub-input-resolution distance, over a random stretch.
    partner = rng.random(n) < bundle_fraction
    if partner.any():
        m = int(partner.sum())
        sep = _uniform(rng, pair_separation_um, m)[:, None] * rng.choice([-1, 1], (m, 1))
        a = rng.uniform(0, 0.5, m)[:, None] * length_um[partner, None] / step
        b = a + rng.uniform(0.3, 1.0, m)[:, None] * length_um[partner, None] / step
        idx = np.arange(n_steps)
        stretch = valid[partner] & (idx >= a) & (idx < b)
        t = theta[partner]
        py, px = y[partner] + sep * np.cos(t), x[partner] - sep * np.sin(t)
        if keep is not None:
            stretch &= keep(py, px, np.flatnonzero(partner))
        canvas.path(py, px, stretch, linear[partner], width_um)


def filaments(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    persistence_um: Range = (5.0, 20.0),
    length_um: Range = (10.0, 60.0),
    width_um: float = 0.025,
    filaments_per_1000um2: float = 4.0,
    bundle_fraction: float = 0.3,
) -> np.ndarray:
    """Microtubule-like filaments: persistent random walks drawn as thin lines.

    Each filament has a random persistence length and brightness and a smooth
    labelling variation along it; a ``bundle_fraction`` of them get a parallel
    partner at a distance from ``pair_separation_um`` over part of their length.

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    persistence_um : (float, float)
        Range of persistence lengths.
    length_um : (float, float)
        Range of contour lengths.
    width_um : float
        Line width (~25 nm for microtubules): sub-pixel, it only sets the mass.
    filaments_per_1000um2 : float
        Mean count per 1000 µm² at ``density=1``.
    bundle_fraction : float
        Fraction of filaments with a close parallel partner.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = _extent_um(shape, pixel_size_um)
    canvas = _Canvas(tuple(shape), pixel_size_um)
    n = max(1, rng.poisson(density * filaments_per_1000um2 * height * width / 1000))
    # Start anywhere, run in a random direction: many cross the field edge, as in images.
    start = rng.uniform(0, 1, (n, 2)) * [height, width]
    _draw_filaments(
        canvas,
        rng,
        start,
        rng.uniform(0, 2 * np.pi, n),
        length_um=_uniform(rng, length_um, n),
        persistence_um=persistence_um,
        width_um=width_um,
        density=rng.lognormal(0, 0.3, n),
        pair_separation_um=pair_separation_um,
        bundle_fraction=bundle_fraction,
    )
    return canvas.render()


class _Outline(NamedTuple):
    """A star-shaped closed contour ``r(θ) = radius (1 + Σ_k a_k cos(k θ + φ_k))``."""

    cy: float
    cx: float
    radius: float
    amplitudes: np.ndarray
    phases: np.ndarray
    tilt: float = 0.0
    aspect: float = 1.0

    @classmethod
    def random(cls, rng, cy, cx, radius, roughness, aspect=1.0) -> _Outline:
        k = np.arange(2, 6)
        amplitudes = np.clip(rng.normal(0, roughness / k), -2 * roughness / k, 2 * roughness / k)
        return cls(
            cy, cx, radius, amplitudes, rng.uniform(0, 2 * np.pi, 4), rng.uniform(0, np.pi), aspect
        )

    def polar(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance from the centre and contour radius in that direction."""
        dtype = np.result_type(y, x, np.float32)  # float32 in, complex64 arithmetic
        dy, dx = (y - dtype.type(self.cy)), (x - dtype.type(self.cx))
        d = np.hypot(dy, dx)
        z = (dx + 1j * dy) / np.maximum(d, 1e-12)  # e^{iθ}: harmonics without trigonometry
        c = (self.amplitudes * np.exp(1j * self.phases)).astype(z.dtype)
        # Σ a_k cos(k θ + φ_k) = Re Σ c_k z^k, by Horner's rule from k = 5 down to 2.
        acc = c[3] * z + c[2]
        acc = (acc * z + c[1]) * z + c[0]
        r = self.radius * (1 + (acc * z * z).real)
        if self.aspect != 1.0:  # an ellipse: the radius in direction θ
            w = z * z.dtype.type(np.exp(-1j * self.tilt))
            r = r / np.sqrt(w.real**2 + (w.imag * self.aspect) ** 2)
        return d, r

    def inside(self, y: np.ndarray, x: np.ndarray, margin: float = 1.0) -> np.ndarray:
        d, r = self.polar(y, x)
        return d < margin * r

    def contour(self, step_um: float) -> tuple[np.ndarray, np.ndarray]:
        n = max(16, math.ceil(2 * np.pi * self.radius * 1.5 / step_um))
        theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
        y0 = self.cy + np.sin(theta)
        x0 = self.cx + np.cos(theta)
        _, r = self.polar(y0, x0)
        return self.cy + r * np.sin(theta), self.cx + r * np.cos(theta)

    def random_inside(self, rng, n: int, fraction=(0.0, 0.95)) -> tuple[np.ndarray, np.ndarray]:
        theta = rng.uniform(0, 2 * np.pi, n)
        _, r = self.polar(self.cy + np.sin(theta), self.cx + np.cos(theta))
        rho = r * np.sqrt(rng.uniform(fraction[0] ** 2, fraction[1] ** 2, n))  # uniform in area
        return self.cy + rho * np.sin(theta), self.cx + rho * np.cos(theta)

    def fill(self, canvas: _Canvas, density: float, texture=None, block: int = 1) -> None:
        """Fill with areal ``density`` (× ``texture(shape)``), anti-aliased at the edge.

        ``block > 1`` evaluates the outline on ``block × block`` pixel blocks: for
        dim, smooth fills whose edge hides under a brighter outline, at a fraction
        of the cost.
        """
        px = canvas.px
        reach = self.radius * (1 + np.abs(self.amplitudes).sum()) * max(1.0, 1 / self.aspect)
        y0 = math.floor((self.cy - reach) / px)
        x0 = math.floor((self.cx - reach) / px)
        n = math.ceil(2 * reach / px) + 2
        h, w = canvas.shape  # clip the box to the canvas before any work
        ya, xa = max(y0, 0), max(x0, 0)
        yb, xb = min(y0 + n, h), min(x0 + n, w)
        if ya >= yb or xa >= xb:
            return
        step = block * px
        # Single precision: these boxes are the bulk of a cell scene's drawing cost.
        yy = (ya * px + (np.arange(math.ceil((yb - ya) / block)) + 0.5) * step)[:, None]
        xx = (xa * px + (np.arange(math.ceil((xb - xa) / block)) + 0.5) * step)[None, :]
        d, r = self.polar(yy.astype(np.float32), xx.astype(np.float32))
        values = np.clip((r - d) / step + 0.5, 0, 1) * (density * px * px)
        if block > 1:
            values = values.repeat(block, 0).repeat(block, 1)[: yb - ya, : xb - xa]
        if texture is not None:
            values *= texture(values.shape)
        canvas.patch(ya, xa, values)


def _place_cells(rng, height, width, n, radius_um) -> list[tuple[float, float, float]]:
    """Cell centres and radii by rejection: neighbours may touch and overlap a little."""
    placed: list[tuple[float, float, float]] = []
    for _ in range(30 * n):
        if len(placed) == n:
            break
        r = _uniform(rng, radius_um)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        if all(math.hypot(cy - y, cx - x) > 0.8 * (r + q) for y, x, q in placed):
            placed.append((cy, cx, r))
    return placed


def cells(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    radius_um: Range = (7.0, 14.0),
    cells_per_1000um2: float = 2.0,
) -> np.ndarray:
    """Cell-like scenes: membranes, textured nuclei, vesicles, mitochondria, microtubules.

    Per cell: a smooth closed plasma-membrane contour over a dim cytosol, an
    elliptical nucleus with chromatin texture and darker nucleoli, vesicles
    (30–150 nm radius puncta, some in close pairs from ``pair_separation_um``),
    mitochondria (worm-like tubes 0.25–0.5 µm thick, 1–5 µm long) and
    microtubules radiating from near the nucleus to the membrane.

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    radius_um : (float, float)
        Range of mean cell radii.
    cells_per_1000um2 : float
        Mean number of cells per 1000 µm² at ``density=1`` (at least 1).

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = _extent_um(shape, pixel_size_um)
    canvas = _Canvas(tuple(shape), pixel_size_um)
    px = pixel_size_um
    n_cells = max(1, rng.poisson(density * cells_per_1000um2 * height * width / 1000))
    # Per-cell parameters in one pass, drawing batched per structure (Python overhead).
    outlines: list[_Outline] = []
    membrane: list[tuple[np.ndarray, ...]] = []
    vesicles: list[tuple[np.ndarray, ...]] = []
    mito: list[tuple[np.ndarray, ...]] = []
    tubules: list[tuple[np.ndarray, ...]] = []
    for index, (cy, cx, radius) in enumerate(_place_cells(rng, height, width, n_cells, radius_um)):
        cell = _Outline.random(rng, cy, cx, radius, roughness=0.12)
        outlines.append(cell)
        # Areal densities (dye per µm²) set the relative brightness of the compartments.
        cell.fill(canvas, rng.uniform(0.02, 0.05), block=4)
        my, mx = cell.contour(px / 2)
        arc = np.hypot(my - np.roll(my, 1), mx - np.roll(mx, 1))
        membrane.append((my, mx, rng.uniform(1.0, 2.0) * 0.05 * arc))  # 50 nm wide

        angle = rng.uniform(0, 2 * np.pi)
        shift = rng.uniform(0, 0.2 * radius)
        nucleus = _Outline.random(
            rng,
            cy + shift * np.sin(angle),
            cx + shift * np.cos(angle),
            radius * rng.uniform(0.3, 0.45),
            roughness=0.04,
            aspect=rng.uniform(1.0, 1.6),
        )
        nucleus.fill(canvas, rng.uniform(0.1, 0.25), texture=_chromatin(rng, px))

        n_ves = rng.poisson(density * 0.4 * radius**2)
        vy, vx = cell.random_inside(rng, n_ves)
        n_close = max(1, n_ves // 10)  # partners at a distance only the target resolves
        sep = _uniform(rng, pair_separation_um, n_close)
        ang = rng.uniform(0, 2 * np.pi, n_close)
        vy = np.concatenate([vy, vy[:n_close] + sep * np.sin(ang)])
        vx = np.concatenate([vx, vx[:n_close] + sep * np.cos(ang)])
        vesicles.append((vy, vx))

        n_mito = rng.poisson(density * 0.12 * radius**2)
        my, mx = cell.random_inside(rng, n_mito, fraction=(0.3, 0.9))
        mito.append((my, mx, np.full(n_mito, index)))

        n_mt = rng.poisson(density * 0.06 * radius**2)
        # Microtubules grow from the centrosome next to the nucleus out to the membrane.
        near = 1.1 * nucleus.radius * rng.uniform(0.9, 1.2)
        out = rng.uniform(0, 2 * np.pi, n_mt)
        ty = nucleus.cy + near * np.sin(angle + np.pi) + 0.5 * np.sin(out)
        tx = nucleus.cx + near * np.cos(angle + np.pi) + 0.5 * np.cos(out)
        brightness = rng.uniform(1.5, 3.0) * rng.lognormal(0, 0.2, n_mt)
        tubules.append((ty, tx, out, brightness, np.full(n_mt, 3.0 * radius), np.full(n_mt, index)))

    def stack(parts: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
        return [np.concatenate(column) for column in zip(*parts, strict=True)]

    def inside_own_cell(owner: np.ndarray, margin: float):
        def keep(y: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
            inside = np.zeros(y.shape, bool)
            for c, outline in enumerate(outlines):
                mine = owner[rows] == c
                if mine.any():
                    inside[mine] = outline.inside(y[mine], x[mine], margin=margin)
            return inside

        return keep

    my, mx, mass = stack(membrane)
    canvas.points(my, mx, mass)

    vy, vx = stack(vesicles)
    canvas.blobs(
        vy,
        vx,
        0.06 * rng.lognormal(0, 0.5, vy.size),
        _uniform(rng, (0.03, 0.15), vy.size),
        "sphere",
    )

    # Mitochondria: short worm-like tubes, 0.25-0.5 µm thick, 1-5 µm long.
    my, mx, owner = stack(mito)
    if owner.size:
        step = 0.15  # µm: about the tube radius; the PSF smooths what ripple is left
        length = _uniform(rng, (1.0, 5.0), owner.size)
        n_steps = math.ceil(length.max() / step)
        heading = rng.uniform(0, 2 * np.pi, owner.size)
        persistence = _uniform(rng, (1.5, 5.0), owner.size)
        ty, tx, _ = _persistent_walks(
            rng, np.stack([my, mx], 1), heading, n_steps, step, persistence
        )
        valid = np.arange(n_steps) < (length / step)[:, None]
        keep = inside_own_cell(owner.astype(np.intp), 0.97)
        valid &= np.cumprod(keep(ty, tx, np.arange(owner.size)), axis=1).astype(bool)
        thickness = _uniform(rng, (0.25, 0.5), (owner.size, 1))
        canvas.path(ty, tx, valid, rng.uniform(0.3, 0.6, (owner.size, 1)), thickness)

    ty, tx, out, brightness, length, owner = stack(tubules)
    _draw_filaments(
        canvas,
        rng,
        np.stack([ty, tx], 1),
        out,
        length_um=length,
        persistence_um=(5.0, 15.0),
        width_um=0.025,
        density=brightness,
        pair_separation_um=pair_separation_um,
        bundle_fraction=0.2,
        keep=inside_own_cell(owner.astype(np.intp), 0.98),
    )
    return canvas.render()


def _chromatin(rng: np.random.Generator, px: float) -> Callable[[tuple[int, int]], np.ndarray]:
    """Chromatin-like texture: smoothed noise (~0.3 µm grain) with darker nucleoli."""

    def texture(shape: tuple[int, int]) -> np.ndarray:
        grain = ndimage.gaussian_filter(rng.normal(size=shape), 0.3 / px, truncate=3.0)
        grain /= grain.std() + 1e-12
        tex = np.clip(1 + 0.35 * grain, 0.1, None)
        yy, xx = np.ogrid[: shape[0], : shape[1]]
        for _ in range(rng.integers(1, 4)):
            y, x = rng.uniform(0.3, 0.7) * shape[0], rng.uniform(0.3, 0.7) * shape[1]
            s = rng.uniform(0.4, 0.9) / px
            tex *= 1 - 0.6 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s * s))
        return tex

    return texture


#: The concrete scene types ``"mixed"`` draws from.
MIXED_SCENES: tuple[str, ...] = ("beads", "filaments", "cells")


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
    "mixed": mixed,
}


# --------------------------------------------------------------------------------------------
# Paired simulation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedPair:
    """A simulated input/target pair of the same sample.

    Attributes
    ----------
    low : ndarray of float32, shape (H / scale, W / scale)
        Input camera image in ADU.
    high : ndarray of float32, shape (H, W)
        Ground truth on the target grid: expected photons (default) or ADU
        (``ground_truth="acquired"``); see ``metadata["high_units"]``.
    low_pixel_size_um, high_pixel_size_um : float
        Pixel sizes at the sample.
    metadata : dict
        The physics and the random draws of this pair (JSON-serialisable).
    """

    low: np.ndarray
    high: np.ndarray
    low_pixel_size_um: float
    high_pixel_size_um: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def scale(self) -> int:
        """Target pixels per input pixel and axis."""
        return self.high.shape[-1] // self.low.shape[-1]


def _target_shape(shape: int | tuple[int, int], scale: int) -> tuple[int, int]:
    shape = (shape, shape) if isinstance(shape, int | np.integer) else tuple(shape)
    if len(shape) != 2 or any(int(s) != s or s < 1 for s in shape):
        raise InputError(f"shape must be (height, width) in target pixels, got {shape}")
    if shape[0] % scale or shape[1] % scale:
        raise InputError(
            f"shape {shape} (target pixels) must be divisible by the scale factor {scale}"
        )
    return int(shape[0]), int(shape[1])


def _background_field(rng: np.random.Generator, shape: tuple[int, int], px: float) -> np.ndarray:
    """Smooth random haze in [-1, 1]: a few plane waves of 15–60 µm wavelength."""
    y = np.arange(shape[0]) * px
    x = np.arange(shape[1]) * px
    total = np.zeros(shape, dtype=np.complex128)
    for _ in range(4):
        k = 2 * np.pi / rng.uniform(15.0, 60.0)
        a = rng.uniform(0, 2 * np.pi)
        phase = np.exp(1j * rng.uniform(0, 2 * np.pi))
        total += np.outer(phase * np.exp(1j * k * np.sin(a) * y), np.exp(1j * k * np.cos(a) * x))
    f = total.real
    return f / max(np.abs(f).max(), 1e-12)


def _image_through(density: np.ndarray, psf: np.ndarray, pad: int, bin_factor: int) -> np.ndarray:
    """Blur the padded map (``valid``: the field sees light from outside it), then bin."""
    r = psf.shape[0] // 2
    cut = pad - r
    region = density[cut : density.shape[0] - cut, cut : density.shape[1] - cut]
    blurred = fftconvolve(region, psf, mode="valid")
    return integrate_pixels(np.maximum(blurred, 0), bin_factor).astype(np.float64)


def simulate_pair(
    config: SimulationConfig, *, shape: int | tuple[int, int], rng: RngLike = None
) -> SimulatedPair:
    """Simulate one input/target pair of a random sample.

    Parameters
    ----------
    config : SimulationConfig
        Physics, scene and photon ranges.
    shape : int or (int, int)
        Target image shape in target pixels; divisible by ``config.scale``.
    rng : numpy.random.Generator or int or None
        Random source (the pair is a deterministic function of it).

    Returns
    -------
    SimulatedPair
        ``low`` (input ADU), ``high`` (target ground truth), pixel sizes, metadata.
    """
    rng = np.random.default_rng(rng)
    height, width = _target_shape(shape, config.scale)
    scale, fine_px = config.scale, config.fine_pixel_size_um
    kind, wavelength = config.psf, config.wavelength_um
    psf_in = _psf_float32(kind, config.input.na, wavelength, fine_px)
    psf_t = _psf_float32(kind, config.target.na, wavelength, fine_px)
    # Pad by the larger PSF radius, in whole input pixels so the camera grids stay aligned.
    radius = max(psf_in.shape[0], psf_t.shape[0]) // 2
    pad = math.ceil(radius / config.input_bin) * config.input_bin
    fine_shape = (height * config.oversample + 2 * pad, width * config.oversample + 2 * pad)

    scene = config.scene
    if scene == "mixed":
        scene = MIXED_SCENES[rng.integers(len(MIXED_SCENES))]
    separation = (config.target_fwhm_um, config.input_fwhm_um)
    separation = (min(separation), max(separation))
    density = SCENES[scene](
        fine_shape,
        pixel_size_um=fine_px,
        rng=rng,
        density=config.scene_density,
        pair_separation_um=separation,
    ).astype(np.float32)  # single precision halves the FFT cost; ample for photon counts

    low_signal = _image_through(density, psf_in, pad, config.input_bin)
    high_signal = _image_through(density, psf_t, pad, config.target_bin)
    peak = float(_loguniform(rng, config.input_peak_photons))
    brightest = low_signal.max()
    photons_per_unit = peak / brightest if brightest > 0 else 0.0  # a blank field stays blank

    background = float(_uniform(rng, config.background_photons))
    haze = _background_field(rng, (height, width), config.target.pixel_size_um)
    # Background photons per target pixel: `background` per input pixel, modulated by haze.
    background_high = (background / scale**2) * (1 + config.background_variation * haze)
    low_photons = photons_per_unit * low_signal + integrate_pixels(background_high, scale)
    low = config.input.camera.acquire(low_photons, rng)

    high_photons = photons_per_unit * config.target_photon_scale * high_signal
    if config.target_background:
        high_photons = high_photons + config.target_photon_scale * background_high
    if config.ground_truth == "acquired":
        high, high_units = config.target.camera.acquire(high_photons, rng), "ADU"
    else:
        high, high_units = high_photons, "photons"

    metadata = {
        "scene": scene,
        "scene_requested": config.scene,
        "scale": scale,
        "psf": kind,
        "wavelength_um": wavelength,
        "input_na": config.input.na,
        "target_na": config.target.na,
        "input_magnification": config.input.magnification,
        "target_magnification": config.target.magnification,
        "input_pixel_size_um": config.input.pixel_size_um,
        "target_pixel_size_um": config.target.pixel_size_um,
        "fine_pixel_size_um": fine_px,
        "oversample": config.oversample,
        "input_fwhm_um": config.input_fwhm_um,
        "target_fwhm_um": config.target_fwhm_um,
        "pair_separation_um": list(separation),
        "input_peak_photons": peak,
        "target_peak_photons": float(high_photons.max()),
        "background_photons": background,
        "background_variation": config.background_variation,
        "target_photon_scale": config.target_photon_scale,
        "target_background": config.target_background,
        "ground_truth": config.ground_truth,
        "low_units": "ADU",
        "high_units": high_units,
        "input_camera": config.input.camera.model_dump(),
        "target_camera": config.target.camera.model_dump(),
        "config": config.model_dump(mode="json"),
    }
    return SimulatedPair(
        low=low.astype(np.float32),
        high=high.astype(np.float32),
        low_pixel_size_um=config.input.pixel_size_um,
        high_pixel_size_um=config.target.pixel_size_um,
        metadata=metadata,
    )


def simulate_pairs(
    config: SimulationConfig, *, n: int, shape: int | tuple[int, int], seed: int = 0
) -> Iterator[SimulatedPair]:
    """Lazily simulate ``n`` independent pairs.

    Pair ``i`` depends only on ``(seed, i)`` (child ``i`` of
    ``numpy.random.SeedSequence(seed)``), not on ``n``.

    Parameters
    ----------
    config : SimulationConfig
    n : int
        Number of pairs (≥ 0).
    shape : int or (int, int)
        Target shape, as in :func:`simulate_pair`.
    seed : int
        Non-negative seed.

    Returns
    -------
    iterator of SimulatedPair
        ``metadata`` also holds ``seed`` and ``index``.
    """
    if int(n) != n or n < 0:
        raise InputError(f"n must be a non-negative integer, got {n}")
    _target_shape(shape, config.scale)  # fail now, not at the first next()
    children = np.random.SeedSequence(seed).spawn(int(n))

    def generate() -> Iterator[SimulatedPair]:
        for index, child in enumerate(children):
            pair = simulate_pair(config, shape=shape, rng=np.random.default_rng(child))
            pair.metadata.update(seed=seed, index=index)
            yield pair

    return generate()


def _require_positive(**values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, int | float | np.number) and math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive finite number, got {value!r}")
