"""Drawing on the fine grid: splats, blobs, lines and dense patches, rendered with one bincount.

Every scene module draws on a :class:`Canvas`; the helpers here are the shared
random geometry (uniform and log-uniform draws, worm-like chains, outlines).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
from scipy import ndimage

from ...core.optics import AIRY_FWHM_FACTOR, require_positive
from ...errors import InputError
from .._random import Range

__all__ = [
    "DEFAULT_PAIR_SEPARATION_UM",
    "Canvas",
    "Outline",
    "OutlineBox",
    "extent_um",
    "persistent_walks",
    "smooth_modulation",
]


class Canvas:
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


def extent_um(shape: tuple[int, int], pixel_size_um: float) -> tuple[float, float]:
    if len(shape) != 2 or min(shape) < 1:
        raise InputError(f"scene shape must be 2 positive integers, got {shape}")
    require_positive(pixel_size_um=pixel_size_um)
    return shape[0] * pixel_size_um, shape[1] * pixel_size_um


def persistent_walks(
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


def smooth_modulation(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, amount):
    """1 + ``amount`` × unit-variance noise smoothed along the last axis (labelling density)."""
    noise = ndimage.gaussian_filter1d(rng.normal(size=shape), sigma, axis=-1, mode="wrap")
    noise /= noise.std() + 1e-12
    return np.clip(1 + amount * noise, 0.2, None)


DEFAULT_PAIR_SEPARATION_UM: Range = (
    AIRY_FWHM_FACTOR * 0.52 / 0.75,
    AIRY_FWHM_FACTOR * 0.52 / 0.4,
)


class Outline(NamedTuple):
    """A star-shaped closed contour ``r(θ) = radius (1 + Σ_k a_k cos(k θ + φ_k))``."""

    cy: float
    cx: float
    radius: float
    amplitudes: np.ndarray
    phases: np.ndarray
    tilt: float = 0.0
    aspect: float = 1.0

    @classmethod
    def random(cls, rng, cy, cx, radius, roughness, aspect=1.0) -> Outline:
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

    def sample_box(self, canvas: Canvas, block: int = 1) -> OutlineBox | None:
        """The canvas pixels around the outline and the polar coordinates of their centres.

        ``block > 1`` samples ``block × block`` pixel blocks (one value per block).
        Returns None where the box misses the canvas.
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
            return None
        step = block * px
        # Single precision: these boxes are the bulk of a cell scene's drawing cost.
        yy = (ya * px + (np.arange(math.ceil((yb - ya) / block)) + 0.5) * step)[:, None]
        xx = (xa * px + (np.arange(math.ceil((xb - xa) / block)) + 0.5) * step)[None, :]
        d, r = self.polar(yy.astype(np.float32), xx.astype(np.float32))
        return OutlineBox(ya, xa, yb, xb, d, r, step)

    def fill(self, canvas: Canvas, density: float, texture=None, block: int = 1) -> None:
        """Fill with areal ``density`` (× ``texture(shape)``), anti-aliased at the edge.

        ``block > 1`` evaluates the outline on ``block × block`` pixel blocks: for
        dim, smooth fills whose edge hides under a brighter outline, at a fraction
        of the cost.
        """
        box = self.sample_box(canvas, block)
        if box is None:
            return
        px = canvas.px
        values = np.clip((box.r - box.d) / box.step + 0.5, 0, 1) * (density * px * px)
        if block > 1:
            values = values.repeat(block, 0).repeat(block, 1)[: box.yb - box.ya, : box.xb - box.xa]
        if texture is not None:
            values *= texture(values.shape)
        canvas.patch(box.ya, box.xa, values)


class OutlineBox(NamedTuple):
    """Pixels ``[ya, yb) × [xa, xb)`` around an :class:`Outline`, sampled every ``step`` µm.

    ``d`` is each sample's distance from the outline centre and ``r`` the
    contour radius in its direction (both in µm, float32): ``d < r`` inside.
    """

    ya: int
    xa: int
    yb: int
    xb: int
    d: np.ndarray
    r: np.ndarray
    step: float
