"""Paired training data in memory, and ``low/`` + ``high/`` folders of the user's own.

Simulated pairs come from :mod:`.simulated`.

A :class:`PairPool` holds whole normalised image pairs in memory (the input on
its own grid, the target on the ``scale``-times finer grid) and serves random
batches of aligned crops with random flips and 90° rotations. Simulated data
are generated once into a pool, so a training step costs no simulation.

Normalisation is the one :func:`napari_mscgm.restore` applies at inference
(:class:`~napari_mscgm.core.normalize.PercentileNormalizer`): each image is mapped by
its own percentiles (default 1 / 99.8) to roughly [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.normalize import PercentileNormalizer
from ..errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "PairPool",
    "folder_pairs",
    "folder_pool",
    "pool_of",
    "read_pairs",
]

IMAGE_SUFFIXES = (".ome.tif", ".ome.tiff", ".tif", ".tiff")
#: Relative tolerance of the pixel-size check between a ``low`` and ``high`` file.
PIXEL_SIZE_TOLERANCE = 0.05


def _normalized(image: np.ndarray, pmin: float, pmax: float) -> np.ndarray:
    """``image`` mapped by its own percentiles, as float32."""
    return PercentileNormalizer(pmin, pmax).fit(image).normalize(image).astype(np.float32)


def _augment(array: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 symmetries of the square (code 0…7): rot90 ``code % 4`` times, then flip."""
    out = np.rot90(array, code % 4, axes=(-2, -1))
    if code >= 4:
        out = out[..., ::-1]
    return out


@dataclass
class PairPool:
    """Normalised image pairs in memory, served as random augmented crops.

    Attributes
    ----------
    lows : list of numpy.ndarray
        2D float32 inputs, each of shape ``(h, w)``.
    highs : list of numpy.ndarray
        2D float32 targets, each of shape ``(h * scale, w * scale)``.
    scale : int
        Sampling ratio between the two grids.
    names : list of str
        One name per pair (file stems or simulated indices).
    """

    lows: list[np.ndarray]
    highs: list[np.ndarray]
    scale: int
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.lows) != len(self.highs) or not self.lows:
            raise InputError(
                f"need the same, non-zero number of inputs and targets, got "
                f"{len(self.lows)} and {len(self.highs)}"
            )
        for i, (low, high) in enumerate(zip(self.lows, self.highs, strict=True)):
            if low.ndim != 2 or high.ndim != 2:
                raise InputError(f"pair {i}: expected 2D images, got {low.shape} and {high.shape}")
            if tuple(s * self.scale for s in low.shape) != high.shape:
                raise InputError(
                    f"pair {i}: the target {high.shape} is not {self.scale}× the input {low.shape}"
                )
        if not self.names:
            self.names = [f"{i:04d}" for i in range(len(self.lows))]

    def __len__(self) -> int:
        return len(self.lows)

    @property
    def min_target_size(self) -> int:
        return min(min(h.shape) for h in self.highs)

    def split(self, n_validation: int) -> tuple[PairPool, PairPool]:
        """The last ``n_validation`` pairs as a validation pool, the rest for training."""
        if not 0 < n_validation < len(self):
            raise InputError(f"cannot hold out {n_validation} of {len(self)} pairs for validation")
        cut = len(self) - n_validation
        return (
            PairPool(self.lows[:cut], self.highs[:cut], self.scale, self.names[:cut]),
            PairPool(self.lows[cut:], self.highs[cut:], self.scale, self.names[cut:]),
        )

    def sample(
        self, batch_size: int, *, crop: int, rng: np.random.Generator, augment: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch of aligned crops.

        Parameters
        ----------
        batch_size : int
            Number of crops.
        crop : int
            Crop size on the target grid; a multiple of ``scale``.
        rng : numpy.random.Generator
            Source of the crop positions, images and augmentations.
        augment : bool
            Apply one of the 8 flips / 90° rotations per crop.

        Returns
        -------
        low : torch.Tensor
            ``(N, 1, crop / scale, crop / scale)`` inputs.
        high : torch.Tensor
            ``(N, 1, crop, crop)`` targets.
        """
        if crop % self.scale:
            raise InputError(f"crop {crop} must be a multiple of the scale {self.scale}")
        if crop > self.min_target_size:
            raise InputError(
                f"crop {crop} is larger than the smallest target image ({self.min_target_size})"
            )
        small = crop // self.scale
        lows, highs = [], []
        for _ in range(batch_size):
            i = int(rng.integers(len(self)))
            low, high = self.lows[i], self.highs[i]
            y = int(rng.integers(low.shape[0] - small + 1))
            x = int(rng.integers(low.shape[1] - small + 1))
            lo = low[y : y + small, x : x + small]
            hi = high[
                y * self.scale : (y + small) * self.scale, x * self.scale : (x + small) * self.scale
            ]
            if augment:
                code = int(rng.integers(8))
                lo, hi = _augment(lo, code), _augment(hi, code)
            lows.append(np.ascontiguousarray(lo))
            highs.append(np.ascontiguousarray(hi))
        return (
            torch.from_numpy(np.stack(lows))[:, None],
            torch.from_numpy(np.stack(highs))[:, None],
        )

    def center_crops(self, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The central ``crop`` of every pair, as one deterministic batch (for validation)."""
        small = crop // self.scale
        lows, highs = [], []
        for low, high in zip(self.lows, self.highs, strict=True):
            y = (low.shape[0] - small) // 2
            x = (low.shape[1] - small) // 2
            lows.append(low[y : y + small, x : x + small])
            hs = self.scale
            highs.append(high[y * hs : (y + small) * hs, x * hs : (x + small) * hs])
        return torch.from_numpy(np.stack(lows))[:, None], torch.from_numpy(np.stack(highs))[:, None]


def _image_stem(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def folder_pairs(root: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """Match ``root/low/*`` with ``root/high/*`` by file name (stem).

    Returns
    -------
    list of (name, low_path, high_path)
        Sorted by name.

    Raises
    ------
    InputError
        The folders are missing, empty, or a file has no partner.
    """
    root = Path(root)
    dirs = {}
    for side in ("low", "high"):
        d = root / side
        if not d.is_dir():
            raise InputError(f"{root}: expected a '{side}/' folder of images")
        dirs[side] = {stem: p for p in sorted(d.iterdir()) if (stem := _image_stem(p)) is not None}
    low, high = dirs["low"], dirs["high"]
    unmatched = sorted(set(low) ^ set(high))
    if unmatched:
        raise InputError(
            f"{root}: files without a partner in low/ and high/: {', '.join(unmatched[:5])}"
            + (" …" if len(unmatched) > 5 else "")
        )
    if not low:
        raise InputError(f"{root}: low/ and high/ hold no TIFF images")
    return [(name, low[name], high[name]) for name in sorted(low)]


def _read_plane(path: Path) -> tuple[np.ndarray, float | None]:
    from ..io import read_image

    image = read_image(path)
    data = np.asarray(image.data)
    planes = data.reshape(-1, *data.shape[-2:])
    if planes.shape[0] != 1:
        raise InputError(f"{path}: training pairs must be single 2D planes, got {data.shape}")
    return planes[0].astype(np.float32), image.pixel_size_um[2]


def read_pairs(
    root: str | os.PathLike, *, scale: int, names: Sequence[str] | None = None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Read ``root/low`` + ``root/high`` pairs in their own units and check their registration.

    The check: the target's shape is ``scale`` times the input's, and where both
    files carry a physical pixel size, the input's is ``scale`` times the target's
    (within 5 %).

    Parameters
    ----------
    root : path
        Folder holding ``low/`` and ``high/``.
    scale : int
        The model's scale factor (1 for denoising).
    names : sequence of str, optional
        Read only these pair names.

    Returns
    -------
    list of (name, low, high)
        2D float32 arrays.
    """
    pairs = folder_pairs(root)
    if names is not None:
        pairs = [p for p in pairs if p[0] in set(names)]
    out = []
    for name, low_path, high_path in pairs:
        low, low_px = _read_plane(low_path)
        high, high_px = _read_plane(high_path)
        if tuple(s * scale for s in low.shape) != high.shape:
            raise InputError(
                f"{name}: high {high.shape} is not {scale}× low {low.shape}; the pairs are "
                "not registered for this model's scale"
            )
        if low_px and high_px and abs(low_px / high_px - scale) > PIXEL_SIZE_TOLERANCE * scale:
            raise InputError(
                f"{name}: pixel sizes {low_px:g} µm (low) and {high_px:g} µm (high) do not "
                f"differ by the model's scale {scale}"
            )
        out.append((name, low, high))
    return out


def folder_pool(
    root: str | os.PathLike,
    *,
    scale: int,
    pmin: float = 1.0,
    pmax: float = 99.8,
    names: Sequence[str] | None = None,
) -> PairPool:
    """Load ``root/low`` + ``root/high`` pairs (checked by :func:`read_pairs`) and normalise them.

    Parameters
    ----------
    root : path
        Folder holding ``low/`` and ``high/``.
    scale : int
        The model's scale factor (1 for denoising).
    pmin, pmax : float
        Normalisation percentiles.
    names : sequence of str, optional
        Load only these pair names.
    """
    return pool_of(read_pairs(root, scale=scale, names=names), scale=scale, pmin=pmin, pmax=pmax)


def pool_of(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    *,
    scale: int,
    pmin: float = 1.0,
    pmax: float = 99.8,
) -> PairPool:
    """``(name, low, high)`` pairs in their own units, each image normalised by its own
    percentiles (as inference normalises), as a :class:`PairPool`."""
    return PairPool(
        [_normalized(low, pmin, pmax) for _, low, _ in pairs],
        [_normalized(high, pmin, pmax) for _, _, high in pairs],
        scale,
        [name for name, _, _ in pairs],
    )
