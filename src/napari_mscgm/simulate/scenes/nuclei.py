"""Fields of nuclei (DNA stain): smooth domes or chromatin texture with nucleoli."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from scipy import ndimage

from .._random import Range, RngLike, uniform
from ._canvas import DEFAULT_PAIR_SEPARATION_UM, Canvas, Outline, OutlineBox, extent_um
from ._geometry import place_discs, upsample_linear

__all__ = ["NucleusStyle", "chromatin_grain", "chromatin_texture", "draw_nucleus", "nuclei"]

NucleusStyle = Literal["textured", "smooth", "random"]


def chromatin_texture(
    rng: np.random.Generator, px: float
) -> Callable[[tuple[int, int]], np.ndarray]:
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


def _unit_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Unit-variance Gaussian-smoothed noise; coarse grains are drawn on a 4× coarser grid."""
    block = 4 if sigma_px > 6 else 1
    coarse = tuple(-(-s // block) for s in shape)
    noise = rng.standard_normal(coarse, dtype=np.float32)
    noise = ndimage.gaussian_filter(noise, sigma_px / block, truncate=2.5)
    if block > 1:
        noise = upsample_linear(noise, block)[: shape[0], : shape[1]]
    return noise / max(float(noise.std()), 1e-3)  # a floor for tiny (near-constant) boxes


def chromatin_grain(
    rng: np.random.Generator, shape: tuple[int, int], px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fine (~0.25 µm) and coarse (~1 µm) unit-variance chromatin noise over a canvas."""
    return _unit_noise(rng, shape, 0.25 / px), _unit_noise(rng, shape, 1.0 / px)


def _spots(
    tex: np.ndarray,
    box: OutlineBox,
    px: float,
    centres_um: tuple[np.ndarray, np.ndarray],
    radius_um: np.ndarray,
    gain: np.ndarray,
) -> None:
    """Multiply ``tex`` by ``1 + gain`` inside soft-edged discs (nucleoli, chromocentres)."""
    for y, x, r, g in zip(*centres_um, radius_um, gain, strict=True):
        cy, cx, rp = y / px - 0.5 - box.ya, x / px - 0.5 - box.xa, r / px
        reach = int(rp + 0.6 / px) + 2
        y0, x0 = max(int(cy) - reach, 0), max(int(cx) - reach, 0)
        y1, x1 = min(int(cy) + reach + 1, tex.shape[0]), min(int(cx) + reach + 1, tex.shape[1])
        if y0 >= y1 or x0 >= x1:
            continue
        rho = np.hypot(np.arange(y0, y1)[:, None] - cy, np.arange(x0, x1)[None, :] - cx)
        tex[y0:y1, x0:x1] *= 1 + g / (1 + np.exp((rho - rp) * px / 0.12))  # ~0.1 µm soft edge


def draw_nucleus(
    canvas: Canvas,
    rng: np.random.Generator,
    outline: Outline,
    *,
    brightness: float,
    textured: bool,
    bright_nucleoli: bool = False,
    grain: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Draw one nucleus of mean areal dye ``brightness`` (per µm²).

    A flattened ellipsoid seen from above: a dome ``sqrt(1 - (d/r)^p)`` that is
    flat inside and falls off at the edge (softer for smooth nuclei). Textured
    nuclei add chromatin grain (~0.25 µm) and domains (~1 µm), peripheral
    heterochromatin, 1–4 nucleoli (dark where the stain is excluded, bright for
    a nucleolar stain) and, in some nuclei, bright chromocentres.

    ``grain``: unit-variance fine and coarse chromatin noise over the whole
    canvas, shared by crowded nuclei (cheaper than drawing it per nucleus).
    """
    box = outline.sample_box(canvas)
    if box is None:
        return
    px = canvas.px
    rho = box.d / box.r
    p = rng.uniform(6.0, 12.0) if textured else rng.uniform(3.0, 6.0)
    values = np.sqrt(np.clip(1 - rho**p, 0, None))
    if not textured:  # a faint tilt of the dye level: nearly uniform
        gy, gx = rng.normal(0, 0.05, 2)
        yy = (box.ya + np.arange(values.shape[0]) + 0.5)[:, None] * px - outline.cy
        xx = (box.xa + np.arange(values.shape[1]) + 0.5)[None, :] * px - outline.cx
        values *= np.clip(1 + (gy * yy + gx * xx) / outline.radius, 0.8, 1.2)
    else:
        shape = values.shape
        if grain is None:
            fine, coarse = _unit_noise(rng, shape, 0.25 / px), _unit_noise(rng, shape, 1.0 / px)
        else:
            window = np.s_[box.ya : box.yb, box.xa : box.xb]
            fine, coarse = grain[0][window], grain[1][window]
        tex = 1 + uniform(rng, (0.2, 0.4)) * fine + uniform(rng, (0.1, 0.25)) * coarse
        edge = np.maximum(box.r - box.d, 0)  # µm inside the envelope
        tex *= 1 + rng.uniform(0.0, 0.5) * np.exp(-edge / 0.4)
        np.clip(tex, 0.1, 2.5, out=tex)  # no runaway products of bright grain and rim
        n = int(rng.integers(1, 5))
        radius = np.minimum(uniform(rng, (0.5, 1.4), n), 0.3 * outline.radius)
        gain = uniform(rng, (0.8, 1.8), n) if bright_nucleoli else -uniform(rng, (0.5, 0.85), n)
        _spots(tex, box, px, outline.random_inside(rng, n, (0.0, 0.6)), radius, gain)
        if rng.random() < 0.3:  # chromocentres: bright heterochromatin foci (mouse cells)
            m = int(rng.integers(5, 16))
            foci = outline.random_inside(rng, m, (0.0, 0.85))
            _spots(tex, box, px, foci, uniform(rng, (0.2, 0.45), m), uniform(rng, (0.6, 1.5), m))
        values *= tex
    canvas.patch(box.ya, box.xa, values * (brightness * px * px))


def nuclei(
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
    rng: RngLike,
    density: float = 1.0,
    pair_separation_um: Range = DEFAULT_PAIR_SEPARATION_UM,
    style: NucleusStyle = "random",
    radius_um: Range = (2.5, 7.5),
    nuclei_per_1000um2: float = 5.0,
    dim_fraction: float = 0.15,
    daughter_fraction: float = 0.08,
    bright_nucleoli_fraction: float = 0.3,
) -> np.ndarray:
    """Fields of nuclei (5–15 µm across), as with a DAPI or Hoechst stain.

    Nuclei are elliptical (aspect 1–1.6), do not overlap, and vary in
    brightness (log-normal, 30 %); a ``dim_fraction`` of them carry 15–40 % of
    the dye. Smooth nuclei are nearly uniform domes with a soft edge; textured
    ones have chromatin grain, peripheral heterochromatin and nucleoli (see
    :func:`draw_nucleus`). A ``daughter_fraction`` of nuclei are pairs of small
    round daughter nuclei just after division, their envelopes a gap from
    ``pair_separation_um`` apart (a dark line only the target resolves).

    Parameters
    ----------
    shape, pixel_size_um, rng, density, pair_separation_um
        As in :func:`beads`.
    style : {"textured", "smooth", "random"}
        Nucleus appearance; ``"random"`` picks one per field (equal odds).
    radius_um : (float, float)
        Range of nucleus radii (long semi-axis).
    nuclei_per_1000um2 : float
        Mean count per 1000 µm² at ``density=1`` (at least 1).
    dim_fraction : float
        Fraction of dim nuclei.
    daughter_fraction : float
        Fraction of nuclei replaced by a pair of daughter nuclei.
    bright_nucleoli_fraction : float
        Fraction of textured nuclei whose nucleoli are bright, not dark.

    Returns
    -------
    ndarray of float64
        Dye per pixel, peak 1.
    """
    rng = np.random.default_rng(rng)
    height, width = extent_um(shape, pixel_size_um)
    canvas = Canvas(tuple(shape), pixel_size_um)
    textured = rng.random() < 0.5 if style == "random" else style == "textured"
    n = max(1, rng.poisson(density * nuclei_per_1000um2 * height * width / 1000))
    placed = place_discs(rng, height, width, n, radius_um, min_distance=1.0)
    brightness = rng.lognormal(0, 0.3, len(placed))
    dim = rng.random(len(placed)) < dim_fraction
    brightness[dim] *= uniform(rng, (0.15, 0.4), int(dim.sum()))
    daughters = rng.random(len(placed)) < daughter_fraction
    for (cy, cx, radius), level, split in zip(placed, brightness, daughters, strict=True):
        bright = bool(rng.random() < bright_nucleoli_fraction)
        if split:
            for outline in _daughter_pair(rng, cy, cx, radius, pair_separation_um):
                draw_nucleus(canvas, rng, outline, brightness=1.3 * level, textured=textured)
            continue
        outline = Outline.random(rng, cy, cx, radius, 0.04, aspect=rng.uniform(1.0, 1.6))
        draw_nucleus(
            canvas, rng, outline, brightness=level, textured=textured, bright_nucleoli=bright
        )
    return canvas.render()


def _daughter_pair(
    rng: np.random.Generator, cy: float, cx: float, radius: float, gap_um: Range
) -> tuple[Outline, Outline]:
    """Two round daughter nuclei in a parent's place, their edges a ``gap_um`` apart."""
    r = radius * rng.uniform(0.45, 0.6)
    half = r + uniform(rng, gap_um) / 2
    angle = rng.uniform(0, np.pi)
    dy, dx = half * np.sin(angle), half * np.cos(angle)
    return (
        Outline.random(rng, cy - dy, cx - dx, r, roughness=0.0),
        Outline.random(rng, cy + dy, cx + dx, r, roughness=0.0),
    )
