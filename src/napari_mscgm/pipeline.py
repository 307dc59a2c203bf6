"""``restore``: from an N-D array in intensity units to a restored float32 array.

Steps: check the axes → global per-channel percentile normalisation → every
(t, c, z) plane on its own → the model on the target grid → back to input
intensity units. Noise is keyed by (seed, sample, plane, absolute pixel), so
results do not depend on batching or on which process runs which plane.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from . import __version__
from .device import resolve_device
from .errors import InputError
from .model import MSCGM, load_model
from .noise import NoiseKey

__all__ = [
    "MeanStd",
    "canonical_axes",
    "channel_percentiles",
    "restore",
]

CANONICAL = "TCZYX"
#: Values sampled per channel at most when estimating percentiles of big stacks.
MAX_PERCENTILE_SAMPLES = 4_000_000
_DEFAULT_AXES = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}


class MeanStd(NamedTuple):
    """Per-pixel mean and standard deviation over ``samples`` restorations."""

    mean: np.ndarray
    std: np.ndarray


def canonical_axes(axes: str | None, ndim: int) -> str:
    """Validate an axes string (letters from ``TCZYX``) against ``ndim``; infer it when None.

    Inference: 2D → ``YX``, 3D → ``ZYX``, 4D → ``CZYX``, 5D → ``TCZYX``.
    """
    if axes is None:
        if ndim not in _DEFAULT_AXES:
            raise InputError(f"expected a 2D to 5D image, got {ndim} dimensions")
        return _DEFAULT_AXES[ndim]
    axes = axes.upper()
    if len(axes) != ndim:
        raise InputError(
            f"axes {axes!r} has {len(axes)} letters but the image has {ndim} dimensions"
        )
    bad = sorted(set(axes) - set(CANONICAL))
    if bad:
        raise InputError(f"axes {axes!r} contains {''.join(bad)!r}; use letters from T, C, Z, Y, X")
    if len(set(axes)) != len(axes):
        raise InputError(f"axes {axes!r} repeats a letter")
    if not axes.endswith("YX") and not ("Y" in axes and "X" in axes):
        raise InputError(f"axes {axes!r} must contain Y and X")
    return axes


def _to_tczyx(image: Any, axes: str) -> Any:
    """View ``image`` (numpy, dask or zarr) as 5D TCZYX without loading it."""
    import dask.array as da

    if not isinstance(image, np.ndarray | da.Array):
        image = da.from_array(image, chunks=image.chunks if hasattr(image, "chunks") else "auto")
    order = [axes.index(a) for a in CANONICAL if a in axes]
    view = image.transpose(order)
    present = [a for a in CANONICAL if a in axes]
    index = tuple(slice(None) if a in present else None for a in CANONICAL)
    return view[index]


def _from_tczyx(array: np.ndarray, axes: str) -> np.ndarray:
    squeeze = tuple(i for i, a in enumerate(CANONICAL) if a not in axes)
    squeezed = array.reshape([s for i, s in enumerate(array.shape) if i not in squeeze])
    present = [a for a in CANONICAL if a in axes]
    return squeezed.transpose([present.index(a) for a in axes])


def _check_dtype(dtype: np.dtype) -> None:
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"complex images are not supported (dtype {dtype}); pass the magnitude")
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise InputError(f"unsupported pixel type {dtype}")


def channel_percentiles(
    stack: Any, *, pmin: float, pmax: float, max_samples: int = MAX_PERCENTILE_SAMPLES
) -> np.ndarray:
    """Percentiles per channel of a TCZYX stack, over all of T, Z, Y and X.

    Stacks with more than ``max_samples`` values per channel are estimated from a
    regular strided subsample (whole planes are never all loaded).

    Returns
    -------
    numpy.ndarray
        ``(C, 2)`` float64: ``[low, high]`` per channel.
    """
    t, c, z, y, x = stack.shape
    out = np.empty((c, 2), dtype=np.float64)
    # Stride pixels only when one plane alone exceeds the budget, then stride planes.
    stride = max(1, int(np.ceil(np.sqrt(y * x / max_samples))))
    per_plane = -(-y // stride) * -(-x // stride)
    plane_stride = max(1, int(np.ceil(t * z * per_plane / max_samples)))
    for ci in range(c):
        planes = stack[:, ci].reshape((t * z, y, x))
        sub = planes[::plane_stride, ::stride, ::stride]
        values = np.asarray(sub, dtype=np.float64).ravel()
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise InputError(f"channel {ci} has no finite pixel values")
        out[ci] = np.percentile(finite, [pmin, pmax])
    return out


def restore(
    image: Any,
    model: MSCGM | str,
    *,
    steps: int | None = None,
    seed: int | None = 0,
    eta: float | None = None,
    samples: int = 1,
    axes: str | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 4,
    precision: Literal["float32", "bfloat16"] = "float32",
    progress: Callable[[int, int], None] | None = None,
    return_metadata: bool = False,
) -> np.ndarray | MeanStd | tuple[np.ndarray | MeanStd, dict]:
    """Restore (super-resolve and denoise) a 2D–5D fluorescence image with MSCGM.

    Parameters
    ----------
    image : array-like
        numpy, dask or zarr array with 2 to 5 dimensions.
    model : MSCGM or str
        A loaded model, a bundled model name or a path to a ``.safetensors`` file.
    steps : int, optional
        Reverse diffusion steps (network evaluations) on ``LL_S``; the model's default when None.
    seed : int or None
        Seed of the coordinate-keyed noise; the same seed, input, model,
        parameters and kind of device give the identical output. None draws
        a random seed (recorded in the metadata).
    eta : float, optional
        Sampling noise scale (1 stochastic, 0 deterministic); the model's default when None.
    samples : int
        Number of restorations; above 1 the result is their per-pixel mean and std.
    axes : str, optional
        Letters from ``TCZYX`` naming each dimension; inferred from ``ndim`` when None.
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda[:i]"`` or ``"mps"``; the model's device when None.
    batch_size : int
        Samples of one plane restored per forward pass.
    precision : {"float32", "bfloat16"}
        ``"bfloat16"`` runs the networks under autocast on CUDA (ignored elsewhere).
    progress : callable, optional
        ``progress(done, total)`` after each batch; an exception raised in it stops the run.
    return_metadata : bool
        Also return the run metadata (package version, model, parameters, normalisation).

    Returns
    -------
    numpy.ndarray or MeanStd
        float32 in input intensity units, with the input's axes; Y and X are
        multiplied by the model's scale. ``MeanStd(mean, std)`` when ``samples > 1``.
    metadata : dict
        Only with ``return_metadata=True``.
    """
    if isinstance(model, str):
        model = load_model(model, device=device or "auto")
    target_device = model.device if device is None else resolve_device(device)
    if model.device != target_device:
        model = model.to(target_device)
    model.eval()
    steps = model.config.bbdp.default_steps if steps is None else int(steps)
    eta = model.config.bbdp.default_eta if eta is None else float(eta)
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}")
    if eta < 0:
        raise InputError(f"eta must be >= 0, got {eta}")
    if samples < 1:
        raise InputError(f"samples must be at least 1, got {samples}")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    if seed is None:
        seed = secrets.randbits(32)
    if not 0 <= int(seed) < 2**64:
        raise InputError(f"seed must be an integer in [0, 2**64), got {seed}")
    seed = int(seed)

    ndim = getattr(image, "ndim", None)
    if ndim is None:
        raise InputError(f"expected an array, got {type(image).__name__}")
    axes = canonical_axes(axes, ndim)
    _check_dtype(np.dtype(image.dtype))
    stack = _to_tczyx(image, axes)
    t_size, c_size, z_size, height, width = stack.shape
    if height < 1 or width < 1:
        raise InputError(f"the image has an empty spatial extent {height}×{width}")
    if c_size != 1 and model.channels != 1 and c_size != model.channels:
        raise InputError(f"the model expects {model.channels} channel(s), the image has {c_size}")

    norm = model.config.normalization
    percentiles = channel_percentiles(stack, pmin=norm.pmin, pmax=norm.pmax)
    scale = model.scale
    out_h, out_w = height * scale, width * scale
    mean = np.empty((t_size, c_size, z_size, out_h, out_w), dtype=np.float32)
    std = np.empty_like(mean) if samples > 1 else None

    batches = [list(range(s, min(s + batch_size, samples))) for s in range(0, samples, batch_size)]
    total = t_size * c_size * z_size * len(batches)
    done = 0
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if precision == "bfloat16" and target_device.type == "cuda"
        else contextlib.nullcontext()
    )
    for t in range(t_size):
        for c in range(c_size):
            low, high = percentiles[c]
            span = high - low if high > low else 1.0
            for z in range(z_size):
                plane = np.asarray(stack[t, c, z], dtype=np.float64)
                if not np.all(np.isfinite(plane)):
                    raise InputError(f"plane t={t}, c={c}, z={z} contains NaN or Inf pixels")
                normalised = torch.from_numpy(((plane - low) / span).astype(np.float32))
                degraded = model.upsample(normalised[None, None].to(target_device))
                outputs = []
                for batch in batches:
                    keys = [NoiseKey(seed=seed, sample=s, plane=(t, c, z)) for s in batch]
                    with autocast:
                        restored = model.sample(
                            degraded.expand(len(batch), -1, -1, -1),
                            keys=keys,
                            steps=steps,
                            eta=eta,
                        )
                    outputs.append(restored.float()[:, 0].cpu().numpy().astype(np.float64))
                    done += 1
                    if progress is not None:
                        progress(done, total)
                restored_stack = np.concatenate(outputs, axis=0) * span + low
                mean[t, c, z] = restored_stack.mean(axis=0)
                if std is not None:
                    std[t, c, z] = restored_stack.std(axis=0, ddof=1)

    result: np.ndarray | MeanStd = _from_tczyx(mean, axes)
    if std is not None:
        result = MeanStd(result, _from_tczyx(std, axes))
    if not return_metadata:
        return result
    metadata = {
        "package": "napari-mscgm",
        "version": __version__,
        "model": model.config.name,
        "model_sha256": model.sha256,
        "task": model.config.task,
        "scale": scale,
        "steps": steps,
        "seed": seed,
        "eta": eta,
        "samples": samples,
        "tile_size": None,
        "overlap": None,
        "device": str(target_device),
        "precision": precision,
        "normalization": {
            "pmin": norm.pmin,
            "pmax": norm.pmax,
            "values": percentiles.tolist(),
        },
        "axes": axes,
        "input_shape": list(image.shape),
        "output_shape": list(_from_tczyx(mean, axes).shape),
    }
    return result, metadata
