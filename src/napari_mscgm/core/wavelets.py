"""Multi-level orthogonal 2D Haar wavelet transform in torch.

Conventions (identical to ``pywt.wavedec2(x, "haar", level=S)``):

* For each 2×2 block ``[[a, b], [c, d]]`` (rows are Y, columns are X)::

      LL = (a + b + c + d) / 2
      H  = (a + b - c - d) / 2   # pywt "cH": low-pass along X, high-pass along Y
      V  = (a - b + c - d) / 2   # pywt "cV": high-pass along X, low-pass along Y
      D  = (a - b - c + d) / 2   # pywt "cD"

* Detail bands are stacked in the order ``(H, V, D)`` on a new axis 2, so a
  level-``k`` detail tensor has shape ``(N, C, 3, H / 2**k, W / 2**k)``.
* :func:`haar_dwt2` returns ``(ll, [details_1, ..., details_S])`` from the
  finest level to the coarsest; pywt lists the coarsest first.

The transform is orthonormal, so ``LL_k`` equals ``2**k`` times the local mean
over a ``2**k × 2**k`` block, and the inverse is exact up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "haar_dwt2",
    "haar_dwt2_level",
    "haar_idwt2",
    "haar_idwt2_level",
    "haar_pyramid",
    "pad_to_multiple",
]


def haar_dwt2_level(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One level of the 2D Haar DWT.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C, H, W)`` with even ``H`` and ``W``.

    Returns
    -------
    ll : torch.Tensor
        ``(N, C, H/2, W/2)`` approximation band.
    details : torch.Tensor
        ``(N, C, 3, H/2, W/2)`` detail bands in the order (H, V, D).
    """
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"haar_dwt2_level needs even height and width, got {h}×{w}")
    blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
    a = blocks[:, :, :, 0, :, 0]
    b = blocks[:, :, :, 0, :, 1]
    cc = blocks[:, :, :, 1, :, 0]
    d = blocks[:, :, :, 1, :, 1]
    ll = (a + b + cc + d) * 0.5
    horizontal = (a + b - cc - d) * 0.5
    vertical = (a - b + cc - d) * 0.5
    diagonal = (a - b - cc + d) * 0.5
    return ll, torch.stack((horizontal, vertical, diagonal), dim=2)


def haar_idwt2_level(ll: torch.Tensor, details: torch.Tensor) -> torch.Tensor:
    """Invert :func:`haar_dwt2_level`."""
    horizontal, vertical, diagonal = details.unbind(dim=2)
    a = (ll + horizontal + vertical + diagonal) * 0.5
    b = (ll + horizontal - vertical - diagonal) * 0.5
    c = (ll - horizontal + vertical - diagonal) * 0.5
    d = (ll - horizontal - vertical + diagonal) * 0.5
    n, ch, h, w = ll.shape
    top = torch.stack((a, b), dim=-1)  # (N, C, h, w, 2): X pairs
    bottom = torch.stack((c, d), dim=-1)
    out = torch.stack((top, bottom), dim=3)  # (N, C, h, 2, w, 2)
    return out.reshape(n, ch, 2 * h, 2 * w)


def haar_dwt2(x: torch.Tensor, levels: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Multi-level 2D Haar DWT.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C, H, W)``; ``H`` and ``W`` must be divisible by ``2**levels``
        (see :func:`pad_to_multiple`).
    levels : int
        Number of decomposition levels ``S >= 0``.

    Returns
    -------
    ll : torch.Tensor
        The coarsest approximation band ``LL_S``.
    details : list of torch.Tensor
        ``[details_1, ..., details_S]``, finest first, each ``(N, C, 3, h, w)``.
    """
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    details = []
    ll = x
    for _ in range(levels):
        ll, d = haar_dwt2_level(ll)
        details.append(d)
    return ll, details


def haar_pyramid(x: torch.Tensor, levels: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every approximation band on the way down: ``([x, LL_1, …, LL_S], [details_1, …])``.

    MSCGM conditions each scale on the degraded image's bands at that scale, and
    trains each generator against the clean ``LL_(k-1)``, so both need all levels.
    """
    lls, details = [x], []
    for _ in range(levels):
        ll, d = haar_dwt2_level(lls[-1])
        lls.append(ll)
        details.append(d)
    return lls, details


def haar_idwt2(ll: torch.Tensor, details: list[torch.Tensor]) -> torch.Tensor:
    """Invert :func:`haar_dwt2` (``details`` finest first)."""
    x = ll
    for d in reversed(details):
        x = haar_idwt2_level(x, d)
    return x


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of ``(N, C, H, W)`` so both sizes divide ``multiple``.

    Reflect padding (mirror about the edge pixel, ``numpy.pad(mode="reflect")``)
    keeps the image statistics at the border; images too small to reflect use
    edge replication. Padding only at the bottom/right keeps pixel ``(0, 0)``
    at absolute coordinate ``(0, 0)``, which the coordinate-keyed noise needs.

    Returns
    -------
    padded : torch.Tensor
    original_size : tuple of int
        ``(H, W)`` to crop back to with ``padded[..., :H, :W]``.
    """
    h, w = x.shape[-2:]
    pad_h = (-h) % multiple
    pad_w = (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    padded = x
    # torch's reflect needs pad < size, so pad in rounds of at most size - 1.
    while padded.shape[-2] < h + pad_h or padded.shape[-1] < w + pad_w:
        ph = min(h + pad_h - padded.shape[-2], padded.shape[-2] - 1)
        pw = min(w + pad_w - padded.shape[-1], padded.shape[-1] - 1)
        if (ph <= 0 and padded.shape[-2] < h + pad_h) or (pw <= 0 and padded.shape[-1] < w + pad_w):
            padded = F.pad(
                padded,
                (0, w + pad_w - padded.shape[-1], 0, h + pad_h - padded.shape[-2]),
                mode="replicate",
            )
            break
        padded = F.pad(padded, (0, max(pw, 0), 0, max(ph, 0)), mode="reflect")
    return padded, (h, w)
