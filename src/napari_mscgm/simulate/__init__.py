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

from ..config.simulation import Camera, Microscope, SimulationConfig
from ..core.optics import (
    AIRY_FWHM_FACTOR,
    GAUSSIAN_SIGMA_FACTOR,
    airy_psf,
    fwhm_um,
    gaussian_psf,
)
from .camera import acquire, camera_noise, integrate_pixels
from .pair import SimulatedPair, simulate_pair, simulate_pairs
from .presets import PRESETS, preset_config
from .scenes import (
    DEFAULT_PAIR_SEPARATION_UM,
    MIXED_SCENES,
    SCENES,
    BeadLayout,
    bead_positions,
    beads,
    cells,
    filaments,
    mixed,
    render_beads,
)

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
    "acquire",
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
