"""Widefield optics: in-focus PSF models, their widths and pixel integration of the PSF.

Numpy and scipy only (no torch): the simulator, the Richardson–Lucy baseline and the
consistency check share these functions, so the physics is written once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import special

from ..errors import InputError

#: FWHM of the Airy pattern in units of λ/NA (``[2 J1(v)/v]^2 = 1/2`` at ``v = 1.6163``).
AIRY_FWHM_FACTOR = 2 * 1.616339948 / (2 * math.pi)
#: σ of the Gaussian approximation of the Airy pattern in units of λ/NA.
GAUSSIAN_SIGMA_FACTOR = 0.21
#: Default PSF radius in units of λ/NA; the Airy pattern keeps ~97.5 % of its energy inside.
PSF_RADIUS_FACTOR = 4.0

PsfModel = Literal["airy", "gaussian", "defocus"]

__all__ = [
    "AIRY_FWHM_FACTOR",
    "GAUSSIAN_SIGMA_FACTOR",
    "PSF_RADIUS_FACTOR",
    "PsfModel",
    "airy_otf",
    "airy_psf",
    "cached_psf",
    "defocus_psf",
    "fwhm_um",
    "gaussian_psf",
    "require_positive",
    "resolution_scaling_kernel",
]


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
    require_positive(na=na, wavelength_um=wavelength_um)
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
    require_positive(na=na, wavelength_um=wavelength_um, pixel_size_um=pixel_size_um)
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
    require_positive(na=na, wavelength_um=wavelength_um, pixel_size_um=pixel_size_um)
    size = _psf_size(na, wavelength_um, pixel_size_um, size)
    sigma_px = GAUSSIAN_SIGMA_FACTOR * wavelength_um / na / pixel_size_um
    edges = np.arange(size + 1) - size / 2
    profile = np.diff(special.erf(edges / (np.sqrt(2) * sigma_px)))
    psf = np.outer(profile, profile)
    return psf / psf.sum()


def defocus_psf(
    *,
    na: float,
    wavelength_um: float,
    pixel_size_um: float,
    defocus_um: float,
    immersion_index: float | None = None,
    size: int | None = None,
) -> np.ndarray:
    """Widefield PSF at a focus offset (scalar, paraxial Born–Wolf), integrated over pixels.

    ``I(v, u) ∝ |∫₀¹ J0(v ρ) exp(−i u ρ² / 2) ρ dρ|²`` with ``v = 2π NA r / λ`` and
    ``u = 2π NA² z / (n λ)``; at ``z = 0`` this is the Airy pattern of :func:`airy_psf`.

    Parameters
    ----------
    na, wavelength_um, pixel_size_um, size
        As in :func:`airy_psf` (the default size grows with the defocus blur).
    defocus_um : float
        Distance from the focal plane, µm.
    immersion_index : float, optional
        Refractive index of the immersion; default 1.0 (air) below NA 1, 1.518 (oil) above.

    Returns
    -------
    ndarray of float64, shape (size, size)
        The PSF, centred, summing to 1.
    """
    require_positive(na=na, wavelength_um=wavelength_um, pixel_size_um=pixel_size_um)
    n = immersion_index if immersion_index is not None else (1.0 if na < 1 else 1.518)
    if size is None:  # the geometric blur radius is about z · NA / n: widen the kernel by it
        extra = 2 * math.ceil(abs(defocus_um) * na / n / pixel_size_um)
        size = _psf_size(na, wavelength_um, pixel_size_um, None) + extra
    size = _psf_size(na, wavelength_um, pixel_size_um, size)
    supersample = min(31, max(1, math.ceil(pixel_size_um / (0.05 * wavelength_um / na))))
    # Radial profile by Gauss–Legendre quadrature over the pupil radius ρ, then interpolated.
    rho, weights = np.polynomial.legendre.leggauss(96)
    rho, weights = (rho + 1) / 2, weights / 2
    r_max = (size / 2) * math.sqrt(2) * pixel_size_um
    radii = np.linspace(0.0, r_max, max(512, 8 * size))
    v = 2 * np.pi * na * radii / wavelength_um
    u = 2 * np.pi * na**2 * defocus_um / (n * wavelength_um)
    field = (special.j0(v[:, None] * rho) * np.exp(-0.5j * u * rho**2) * rho) @ weights
    profile = np.abs(field) ** 2
    coord = ((np.arange(size * supersample) + 0.5) / supersample - size / 2) * pixel_size_um
    r = np.hypot(coord[:, None], coord[None, :])
    psf = np.interp(r, radii, profile).reshape(size, supersample, size, supersample).sum((1, 3))
    return psf / psf.sum()


_PSF_MODELS: dict[str, Callable[..., np.ndarray]] = {
    "airy": airy_psf,
    "gaussian": gaussian_psf,
    "defocus": defocus_psf,
}


@lru_cache(maxsize=256)
def cached_psf(
    kind: str, na: float, wavelength_um: float, pixel_size_um: float, defocus_um: float = 0.0
) -> np.ndarray:
    """The float32 PSF of ``kind`` (``airy``, ``gaussian``, ``defocus``), computed once (read-only)."""
    extra = {"defocus_um": defocus_um} if kind == "defocus" else {}
    psf = _PSF_MODELS[kind](
        na=na, wavelength_um=wavelength_um, pixel_size_um=pixel_size_um, **extra
    )
    psf = psf.astype(np.float32)
    psf.setflags(write=False)
    return psf


def require_positive(**values: float) -> None:
    """Raise :class:`InputError` unless every value is a positive finite number."""
    for name, value in values.items():
        if not (isinstance(value, int | float | np.number) and math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive finite number, got {value!r}")


def airy_otf(frequency: np.ndarray, *, na: float, wavelength_um: float) -> np.ndarray:
    """Incoherent OTF of an in-focus circular pupil (the Airy pattern's), at cycles per µm.

    ``OTF(s) = (2/π) (acos s − s √(1 − s²))`` with ``s = f / f_c`` and ``f_c = 2 NA / λ``;
    0 beyond the cut-off.
    """
    require_positive(na=na, wavelength_um=wavelength_um)
    s = np.clip(np.asarray(frequency, dtype=np.float64) / (2 * na / wavelength_um), 0.0, 1.0)
    return (2 / np.pi) * (np.arccos(s) - s * np.sqrt(1 - s**2))


def resolution_scaling_kernel(
    *,
    input_na: float,
    target_na: float,
    wavelength_um: float,
    pixel_size_um: float,
    size: int | None = None,
) -> np.ndarray:
    """The kernel ``k`` with ``PSF_target ⊛ k = PSF_input``, on the target grid.

    NanoJ-SQUIRREL's resolution-scaling function for a widefield pair, computed from the
    real (Airy) OTFs: ``K = OTF_in / OTF_target`` inside the input's pass band (where the
    target's OTF is larger still), 0 outside. Pixel integration needs no kernel: binning
    target pixels into input pixels integrates over the input's pixels.

    Parameters
    ----------
    input_na, target_na, wavelength_um : float
        The two objectives and the emission wavelength; ``target_na >= input_na``.
    pixel_size_um : float
        The target grid's pixel.
    size : int, optional
        Odd side length; default covers the input PSF (radius ``4 λ / NA_in``).

    Returns
    -------
    ndarray of float64, shape (size, size)
        Centred, summing to 1; a single 1 when both NAs are equal.
    """
    require_positive(input_na=input_na, target_na=target_na, pixel_size_um=pixel_size_um)
    if input_na >= target_na:
        return np.ones((1, 1))
    size = _psf_size(input_na, wavelength_um, pixel_size_um, size)
    freq = np.fft.fftfreq(size, d=pixel_size_um)
    f = np.hypot(freq[:, None], freq[None, :])
    otf_in = airy_otf(f, na=input_na, wavelength_um=wavelength_um)
    otf_t = airy_otf(f, na=target_na, wavelength_um=wavelength_um)
    ratio = np.where(otf_in > 0, otf_in / np.maximum(otf_t, 1e-12), 0.0)
    kernel = np.fft.fftshift(np.fft.ifft2(ratio).real)
    return kernel / kernel.sum()
