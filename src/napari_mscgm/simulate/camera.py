"""The camera: exact pixel integration and the sCMOS / CCD noise model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ._random import RngLike

if TYPE_CHECKING:
    from ..config.simulation import Camera

__all__ = ["acquire", "camera_noise", "integrate_pixels"]


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
    dark_e: float | np.ndarray = 0.0,
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
    dark_e : float or ndarray
        Mean dark electrons per pixel and exposure (an array for hot pixels).

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
    if read_noise_e < 0 or np.any(np.asarray(dark_e) < 0) or gain_adu_per_e <= 0:
        raise InputError("read_noise_e and dark_e must be >= 0 and gain_adu_per_e > 0")
    if int(bit_depth) != bit_depth or not 1 <= bit_depth <= 32:
        raise InputError(f"bit_depth must be an integer in [1, 32], got {bit_depth}")
    rng = np.random.default_rng(rng)
    electrons = rng.poisson(qe * photons + dark_e).astype(np.float64)
    if read_noise_e > 0:
        electrons += rng.normal(0.0, read_noise_e, size=photons.shape)
    adu = np.rint(gain_adu_per_e * electrons + offset_adu)
    return np.clip(adu, 0, 2 ** int(bit_depth) - 1)


def acquire(
    camera: Camera, photons: np.ndarray, rng: RngLike, *, dark_e: np.ndarray | None = None
) -> np.ndarray:
    """Expected photons per pixel → ADU with ``camera`` (see :func:`camera_noise`).

    ``dark_e``, when given, replaces the camera's uniform dark electrons per pixel (hot pixels).
    """
    parameters = camera.model_dump(exclude={"pixel_size_um"})
    if dark_e is not None:
        parameters["dark_e"] = dark_e
    return camera_noise(photons, rng=rng, **parameters)
