"""Paired simulation: one sample through the input and the target microscope."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from ..config.simulation import SimulationConfig
from ..core.optics import cached_psf, fwhm_um
from ..errors import InputError
from ._random import RngLike, loguniform, uniform
from .acquisition import DrawnAcquisition, draw_acquisition
from .camera import acquire, integrate_pixels
from .scenes import MIXED_SCENES, SCENES

__all__ = ["SimulatedPair", "simulate_pair", "simulate_pairs"]

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


@dataclass(frozen=True)
class _Optics:
    """The two microscopes on the fine grid: their PSFs, the padding, the resolution band."""

    psf_in: np.ndarray
    psf_target: np.ndarray
    pad: int
    input_fwhm_um: float
    target_fwhm_um: float

    @classmethod
    def of(cls, config: SimulationConfig, drawn: DrawnAcquisition | None = None) -> _Optics:
        """The optics of ``config``; with ``drawn``, the input's PSF is the drawn one."""
        kind, wavelength, fine_px = config.psf, config.wavelength_um, config.fine_pixel_size_um
        input_kind = kind if drawn is None else drawn.psf
        defocus = 0.0 if drawn is None else drawn.defocus_um
        psf_in = cached_psf(input_kind, config.input.na, wavelength, fine_px, defocus)
        if drawn is not None and config.acquisition.same_objective:
            psf_t = psf_in  # one objective: the ground truth is the noise-free input
        else:
            psf_t = cached_psf(kind, config.target.na, wavelength, fine_px)
        input_fwhm_kind = "airy" if input_kind == "defocus" else input_kind
        # Pad by the larger PSF radius, in whole input pixels so the camera grids stay aligned.
        radius = max(psf_in.shape[0], psf_t.shape[0]) // 2
        pad = math.ceil(radius / config.input_bin) * config.input_bin
        return cls(
            psf_in,
            psf_t,
            pad,
            fwhm_um(na=config.input.na, wavelength_um=wavelength, psf=input_fwhm_kind),
            fwhm_um(
                na=config.target.na,
                wavelength_um=wavelength,
                psf=input_fwhm_kind if psf_t is psf_in else kind,
            ),
        )

    @property
    def separation_um(self) -> tuple[float, float]:
        """Separations resolved by the target only: between the two FWHMs."""
        return tuple(sorted((self.target_fwhm_um, self.input_fwhm_um)))


def _draw_scene(
    config: SimulationConfig, optics: _Optics, shape: tuple[int, int], rng: np.random.Generator
) -> tuple[str, np.ndarray]:
    """The scene's name and its dye map on the padded fine grid (float32)."""
    scene, extra = config.scene, {}
    classes = config.classes or MIXED_SCENES
    if scene == "mixed":
        if config.composite_fraction > 0 and rng.random() < config.composite_fraction:
            scene = "composite"
        else:
            scene = classes[rng.integers(len(classes))]
    if scene == "composite":
        extra["classes"] = classes
    pad, over = optics.pad, config.oversample
    fine_shape = (shape[0] * over + 2 * pad, shape[1] * over + 2 * pad)
    density = SCENES[scene](
        fine_shape,
        pixel_size_um=config.fine_pixel_size_um,
        rng=rng,
        density=config.scene_density,
        pair_separation_um=optics.separation_um,
        **extra,
    )
    return scene, density.astype(np.float32)  # single precision halves the FFT cost


def _expose(
    config: SimulationConfig,
    low_signal: np.ndarray,
    high_signal: np.ndarray,
    rng: np.random.Generator,
    drawn: DrawnAcquisition | None = None,
) -> dict[str, Any]:
    """Photons, background and cameras: the input in ADU and the ground truth."""
    scale = config.scale
    peak = float(loguniform(rng, config.input_peak_photons))
    brightest = low_signal.max()
    photons_per_unit = peak / brightest if brightest > 0 else 0.0  # a blank field stays blank
    background = float(uniform(rng, config.background_photons))
    haze = _background_field(rng, high_signal.shape, config.target.pixel_size_um)
    # Background photons per target pixel: `background` per input pixel, modulated by haze.
    background_high = (background / scale**2) * (1 + config.background_variation * haze)
    dark = None
    if drawn is not None:
        background_high = background_high * drawn.background_ramp(high_signal.shape)
        dark = drawn.dark_electrons(low_signal.shape, rng)
    low_photons = photons_per_unit * low_signal + integrate_pixels(background_high, scale)
    low = acquire(config.input.camera, low_photons, rng, dark_e=dark)
    high_photons = photons_per_unit * config.target_photon_scale * high_signal
    if config.target_background:
        high_photons = high_photons + config.target_photon_scale * background_high
    if config.ground_truth == "acquired":
        high, high_units = acquire(config.target.camera, high_photons, rng), "ADU"
    else:
        high, high_units = high_photons, "photons"
    return {
        "low": low, "high": high, "high_units": high_units, "input_peak_photons": peak,
        "target_peak_photons": float(high_photons.max()), "background_photons": background,
    }  # fmt: skip


def _metadata(config: SimulationConfig, optics: _Optics, scene: str, exposure: dict) -> dict:
    return {
        "scene": scene,
        "scene_requested": config.scene,
        "scale": config.scale,
        "psf": config.psf,
        "wavelength_um": config.wavelength_um,
        "input_na": config.input.na,
        "target_na": config.target.na,
        "input_magnification": config.input.magnification,
        "target_magnification": config.target.magnification,
        "input_pixel_size_um": config.input.pixel_size_um,
        "target_pixel_size_um": config.target.pixel_size_um,
        "fine_pixel_size_um": config.fine_pixel_size_um,
        "oversample": config.oversample,
        "input_fwhm_um": optics.input_fwhm_um,
        "target_fwhm_um": optics.target_fwhm_um,
        "pair_separation_um": list(optics.separation_um),
        "input_peak_photons": exposure["input_peak_photons"],
        "target_peak_photons": exposure["target_peak_photons"],
        "background_photons": exposure["background_photons"],
        "background_variation": config.background_variation,
        "target_photon_scale": config.target_photon_scale,
        "target_background": config.target_background,
        "ground_truth": config.ground_truth,
        "low_units": "ADU",
        "high_units": exposure["high_units"],
        "input_camera": config.input.camera.model_dump(),
        "target_camera": config.target.camera.model_dump(),
        "config": config.model_dump(mode="json"),
    }


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
    target_shape = _target_shape(shape, config.scale)
    drawn = draw_acquisition(config, rng) if config.acquisition is not None else None
    effective = config if drawn is None else drawn.config
    optics = _Optics.of(effective, drawn)
    scene, density = _draw_scene(effective, optics, target_shape, rng)
    low_signal = _image_through(density, optics.psf_in, optics.pad, config.input_bin)
    high_signal = _image_through(density, optics.psf_target, optics.pad, config.target_bin)
    if drawn is not None and drawn.vignetting > 0:  # uneven excitation of the sample
        low_signal = low_signal * drawn.illumination(low_signal.shape)
        high_signal = high_signal * drawn.illumination(high_signal.shape)
    exposure = _expose(effective, low_signal, high_signal, rng, drawn)
    metadata = _metadata(effective, optics, scene, exposure)
    if drawn is not None:
        metadata["acquisition"] = drawn.record()
        metadata["config"] = config.model_dump(mode="json")  # the preset, not the draw
    return SimulatedPair(
        low=exposure["low"].astype(np.float32),
        high=exposure["high"].astype(np.float32),
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
