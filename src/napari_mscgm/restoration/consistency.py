"""Does a restoration agree with what was measured? A physics consistency check.

The idea of NanoJ-SQUIRREL (Culley et al., Nat. Methods 2018), with the model's own
physics: the restoration is degraded back to the input (convolved with the kernel that
turns the target PSF into the input PSF, from the Airy OTFs, then binned onto the input
grid; a denoising model's degradation is the identity) and compared with the input.

- **Intensity fit.** ``input ≈ α · degraded + B``: a gain ``α`` by least squares on the
  structure (both images less their smooth part), and a smooth background ``B``, which a
  restoration is not asked to reproduce. Saturated and clipped pixels are left out.
- **Noise.** ``variance = a · mean + b`` fitted on the input itself
  (:func:`~napari_mscgm.core.noise_model.fit_poisson_gaussian`): a user's camera is unknown.
- **Scores.** RSP, the Pearson correlation of the input with the fitted degraded
  restoration; RSE, their RMS difference (input units); the normalised residual
  ``z = (input − fit) / σ`` (the map), where ``σ²`` is the noise variance plus
  (:data:`RELATIVE_TOLERANCE` × the local structure)²; and the fraction of the area where
  ``z``, averaged over the input's resolution, departs from 0 by more than 4 of its
  standard errors. The verdict is ``inconsistent`` when that fraction exceeds
  :data:`INCONSISTENT_FRACTION`. Both constants were chosen on simulated right and wrong
  model pairings (docs/usage.md, "When to trust the result").

What a degradation removes (detail finer than the input resolves) cannot be checked, and
at very low light (tens of photons) the data contradict little: ``consistent`` means
"not contradicted by the data", not "correct".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.signal import fftconvolve

from ..config import PhysicsConfig
from ..core.noise_model import PoissonGaussian, fit_poisson_gaussian
from ..core.optics import GAUSSIAN_SIGMA_FACTOR, resolution_scaling_kernel

__all__ = [
    "INCONSISTENT_FRACTION",
    "ConsistencyCheck",
    "ConsistencyResult",
    "PlaneConsistency",
    "check_consistency",
    "check_stack",
    "summarize",
]

#: Share of the area beyond noise above which a restoration is called inconsistent.
INCONSISTENT_FRACTION = 0.05
#: Standard errors of the locally averaged residual beyond which a pixel disagrees.
Z_LIMIT = 4.0
#: Scale (µm) below which the background fit leaves structure to the restoration.
BACKGROUND_SCALE_UM = 8.0
#: Error tolerated besides the noise, relative to the local structure (the fit less its
#: smooth background): at high SNR the noise alone would call every imperfection of a good
#: restoration inconsistent, and the target grid itself aliases point-like objects. Half
#: the structure still flags what matters: structure painted, lost or moved.
RELATIVE_TOLERANCE = 0.5


@dataclass(frozen=True)
class PlaneConsistency:
    """The scores of one plane (and the map, on the input grid)."""

    rsp: float
    rse: float
    inconsistent_fraction: float
    pixels: int
    noise: PoissonGaussian
    residual: np.ndarray | None = None

    @property
    def verdict(self) -> str:
        return (
            "inconsistent" if self.inconsistent_fraction > INCONSISTENT_FRACTION else "consistent"
        )

    def record(self) -> dict[str, Any]:
        """The JSON document of the run metadata (no map)."""
        return {
            "rsp": self.rsp,
            "rse": self.rse,
            "inconsistent_fraction": self.inconsistent_fraction,
            "verdict": self.verdict,
        }


class ConsistencyCheck:
    """Degrade restorations with a model's physics and compare them with their inputs.

    Parameters
    ----------
    physics : PhysicsConfig
        The model's physics block; without both NAs, the wavelength and the target pixel
        size the degradation is binning alone.
    scale : int
        The model's scale factor (target pixels per input pixel and axis).
    """

    def __init__(
        self, physics: PhysicsConfig, scale: int, *, tolerance: float = RELATIVE_TOLERANCE
    ) -> None:
        self.scale = int(scale)
        self.tolerance = float(tolerance)
        known = (
            physics.input_na,
            physics.target_na,
            physics.emission_wavelength_um,
            physics.target_pixel_size_um,
        )
        if all(v is not None for v in known):
            self.kernel = resolution_scaling_kernel(
                input_na=physics.input_na,
                target_na=physics.target_na,
                wavelength_um=physics.emission_wavelength_um,
                pixel_size_um=physics.target_pixel_size_um,
            )
        else:
            self.kernel = np.ones((1, 1))
        input_px = physics.input_pixel_size_um
        self.background_sigma = BACKGROUND_SCALE_UM / input_px if input_px else 12.0
        # The input's resolution in its pixels: σ of its PSF, at least one pixel.
        sigma_px = 1.0
        if input_px and physics.input_na and physics.emission_wavelength_um:
            sigma_px = GAUSSIAN_SIGMA_FACTOR * physics.emission_wavelength_um
            sigma_px = max(1.0, sigma_px / physics.input_na / input_px)
        self.resolution_sigma = sigma_px

    # ------------------------------------------------------------------ steps
    def degrade(self, restored: np.ndarray) -> np.ndarray:
        """The restoration as the input microscope would have seen it (input grid)."""
        x = np.asarray(restored, dtype=np.float32)  # float32: the FFT is several times faster
        if self.kernel.size > 1:
            r = self.kernel.shape[0] // 2
            padded = np.pad(x, r, mode="edge")  # any size, even 1×1
            x = fftconvolve(padded, self.kernel.astype(np.float32), mode="valid")
        x = x.astype(np.float64)
        s = self.scale
        if s > 1:
            h, w = x.shape[0] // s, x.shape[1] // s
            x = x[: h * s, : w * s].reshape(h, s, w, s).mean(axis=(1, 3))
        return x

    def plane(
        self, measured: np.ndarray, restored: np.ndarray, *, with_map: bool = False
    ) -> PlaneConsistency:
        """Score one plane: the input (its units) and its restoration (target grid)."""
        y = np.asarray(measured, dtype=np.float64)
        d = self.degrade(restored)[: y.shape[0], : y.shape[1]]
        valid = _valid(y) & np.isfinite(d)
        noise = fit_poisson_gaussian(np.where(valid, y, np.nanmedian(y) if valid.any() else 0))
        fit, structure = self._fit(y, d, valid)
        residual = y - fit
        # The structure (the fit above its smooth background) sets the tolerated model error.
        z = residual / np.sqrt(noise.variance(fit) + (self.tolerance * structure) ** 2)
        z = np.where(valid, z, 0.0)
        count = int(valid.sum())
        return PlaneConsistency(
            rsp=_pearson(y[valid], fit[valid]),
            rse=float(np.sqrt(np.mean(residual[valid] ** 2))) if count else 0.0,
            inconsistent_fraction=self._fraction(z, valid),
            pixels=count,
            noise=noise,
            residual=z.astype(np.float32) if with_map else None,
        )

    def _fit(
        self, y: np.ndarray, d: np.ndarray, valid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``α · d + B`` (the gain on the structure, the smooth background apart), and
        the structure ``|α · (d − G(d))|``.

        The low-pass is linear, so ``B = G(y) − α G(d)``: two large filters in all (three
        with invalid pixels), the cost of the check on big planes.
        """
        sigma = min(self.background_sigma, max(y.shape) / 4)
        every = bool(valid.all())
        y0 = y if every else np.where(valid, y, 0.0)
        d0 = d if every else np.where(valid, d, 0.0)
        weight = 1.0
        if not every:  # a normalised (masked) low-pass
            weight = ndimage.gaussian_filter(valid.astype(np.float64), sigma, mode="nearest")
            weight = np.maximum(weight, 1e-12)
        smooth_y = ndimage.gaussian_filter(y0, sigma, mode="nearest") / weight
        smooth_d = ndimage.gaussian_filter(d0, sigma, mode="nearest") / weight
        detail = d0 - smooth_d
        hy, hd = (y0 - smooth_y)[valid], detail[valid]
        power = float(np.sum(hd * hd))
        alpha = float(np.sum(hd * hy) / power) if power > 0 else 0.0
        fit = alpha * d + (smooth_y - alpha * smooth_d)
        return fit, np.abs(alpha * detail)

    def _fraction(self, z: np.ndarray, valid: np.ndarray) -> float:
        """Share of the valid area where ``z`` averaged over the resolution is beyond noise."""
        if not valid.any():
            return 0.0
        sigma = self.resolution_sigma
        local = ndimage.gaussian_filter(z, sigma, mode="nearest")
        # The standard error of a Gaussian-weighted mean of unit-variance noise.
        standard_error = 1.0 / math.sqrt(4 * math.pi * sigma * sigma)
        beyond = (np.abs(local) > Z_LIMIT * standard_error) & valid
        return float(beyond.sum() / valid.sum())


def _valid(y: np.ndarray) -> np.ndarray:
    """Finite pixels that are neither saturated nor clipped.

    Saturated: at the image's maximum where several pixels share it (a plateau);
    clipped: at its minimum where more than 1 % of the pixels share it.
    """
    finite = np.isfinite(y)
    if not finite.any():
        return finite
    values = y[finite]
    top, bottom = values.max(), values.min()
    valid = finite.copy()
    if top > bottom:
        if np.count_nonzero(values == top) >= 3:
            valid &= y != top
        if np.count_nonzero(values == bottom) > 0.01 * values.size:
            valid &= y != bottom
    return valid


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r, 1 for two constant arrays and 0 when only one is constant."""
    if a.size < 2:
        return 1.0
    sa, sb = float(a.std()), float(b.std())
    if sa == 0 or sb == 0:
        return 1.0 if sa == sb else 0.0
    return float(np.clip(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb), -1.0, 1.0))


def summarize(planes: list[PlaneConsistency], indices: list[tuple[int, ...]]) -> dict[str, Any]:
    """The run's ``consistency`` record: area-weighted scores, and one row per plane of a stack."""
    total = sum(p.pixels for p in planes)
    if total == 0:
        overall = PlaneConsistency(1.0, 0.0, 0.0, 0, PoissonGaussian(0.0, 0.0))
    else:
        weights = [p.pixels / total for p in planes]
        overall = PlaneConsistency(
            rsp=float(sum(w * p.rsp for w, p in zip(weights, planes, strict=True))),
            rse=float(math.sqrt(sum(w * p.rse**2 for w, p in zip(weights, planes, strict=True)))),
            inconsistent_fraction=float(
                sum(w * p.inconsistent_fraction for w, p in zip(weights, planes, strict=True))
            ),
            pixels=total,
            noise=planes[0].noise,
        )
    record = overall.record()
    if len(planes) > 1:
        record["planes"] = [
            {"index": list(index), **p.record()} for index, p in zip(indices, planes, strict=True)
        ]
    return record


def check_stack(
    check: ConsistencyCheck,
    measured: Any,
    restored: Callable[[tuple[int, int, int]], np.ndarray],
    *,
    on_map: Callable[[tuple[int, int, int], np.ndarray], None] | None = None,
) -> dict[str, Any]:
    """Check every plane of a 5D TCZYX input against its restoration, one plane at a time.

    Parameters
    ----------
    check : ConsistencyCheck
    measured : array-like
        The 5D input (numpy, dask or zarr); one plane is read at a time.
    restored : callable
        ``restored((t, c, z))`` gives that plane's restoration (target grid).
    on_map : callable, optional
        ``on_map((t, c, z), z_map)`` receives each plane's noise-normalised residual.

    Returns
    -------
    dict
        The ``consistency`` record (see :func:`summarize`).
    """
    planes, indices = [], []
    for index in np.ndindex(*measured.shape[:3]):
        plane = check.plane(
            np.asarray(measured[index]), restored(index), with_map=on_map is not None
        )
        if on_map is not None:
            on_map(index, plane.residual)
        planes.append(plane)
        indices.append(index)
    return summarize(planes, indices)


@dataclass(frozen=True)
class ConsistencyResult:
    """What :func:`check_consistency` found: the record, and the map when asked for."""

    record: dict[str, Any]
    map: np.ndarray | None = None

    @property
    def verdict(self) -> str:
        return self.record["verdict"]


def check_consistency(
    image: Any,
    restored: Any,
    model: Any,
    *,
    axes: str | None = None,
    with_map: bool = False,
) -> ConsistencyResult:
    """Check a restoration against its input with the model's physics.

    Parameters
    ----------
    image : array-like
        The input, 2D to 5D (numpy, dask or zarr), as given to :func:`napari_mscgm.restore`.
    restored : array-like
        Its restoration (the mean, for several samples): the same axes, Y and X times the
        model's scale.
    model : MSCGM or ModelConfig
        The model that restored it (its physics and scale are used).
    axes : str, optional
        As for :func:`napari_mscgm.restore`.
    with_map : bool
        Also return the noise-normalised residual map, on the input's grid and axes.

    Returns
    -------
    ConsistencyResult
        ``record`` holds ``rsp``, ``rse``, ``inconsistent_fraction``, ``verdict`` (and
        ``planes`` for stacks); ``map`` the residual with ``with_map``.
    """
    from .axes import canonical_axes, from_tczyx, to_tczyx
    from .checks import check_array

    config = getattr(model, "config", model)
    image = check_array(image)
    axes = canonical_axes(axes.upper() if axes else None, image.ndim, shape=tuple(image.shape))
    stack, result = to_tczyx(image, axes), to_tczyx(check_array(restored), axes)
    maps = np.zeros(stack.shape, dtype=np.float32) if with_map else None
    record = check_stack(
        ConsistencyCheck(config.physics, config.scale),
        stack,
        lambda index: np.asarray(result[index]),
        on_map=(lambda index, z: maps.__setitem__(index, z)) if with_map else None,
    )
    return ConsistencyResult(record, None if maps is None else from_tczyx(maps, axes))
