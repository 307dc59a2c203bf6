"""``restore``: from an N-D array in intensity units to a restored float32 array.

Steps: check the axes → global per-channel percentile normalisation (from a
bounded subsample) → every (t, c, z) plane on its own, cut into overlapping YX
tiles (:mod:`napari_mscgm.tiling`) → the model on the target grid → blending
→ back to input intensity units. Noise is keyed by (seed, sample, plane,
absolute pixel), so results do not depend on tile size, tile order, batching or
which process runs which tile. The work is one dask graph: run eagerly for
numpy input, returned lazily for dask/zarr input, streamed into OME-Zarr or
OME-TIFF with ``out=``, or run on a dask.distributed cluster with ``client=``.
"""

from __future__ import annotations

import math
import numbers
import os
import secrets
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from . import __version__
from .device import available_memory, resolve_device
from .errors import InputError, OutputError, ResourceError
from .io import check_output_path
from .model import MSCGM, load_model
from .tiling import (
    FLOAT32_MAX,
    ModelSpec,
    Progress,
    RunSpec,
    TileOOMError,
    forward_passes,
    plan_axis,
    restore_graph,
    tile_alignment,
)

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


def canonical_axes(axes: str | None, ndim: int, *, shape: tuple[int, ...] | None = None) -> str:
    """Validate an axes string (letters from ``TCZYX``) against ``ndim``; infer it when None.

    Inference: 2D → ``YX``, 3D → ``ZYX``, 4D → ``CZYX``, 5D → ``TCZYX``. With
    ``shape``, an inferred layout whose last dimension has 3 or 4 values while
    the two before it are several times larger is refused: that is an RGB(A)
    image, which inference would read as a 3- or 4-pixel-wide stack.
    """
    if axes is None:
        if ndim not in _DEFAULT_AXES:
            raise InputError(f"expected a 2D to 5D image, got {ndim} dimensions")
        if shape is not None and ndim >= 3 and shape[-1] in (3, 4):
            if min(shape[-3], shape[-2]) >= 4 * shape[-1]:
                colour = "RGB" if shape[-1] == 3 else "RGBA"
                suggestion = {3: "YXC", 4: "ZYXC", 5: "TZYXC"}[ndim]
                raise InputError(
                    f"the image's shape {tuple(shape)} ends in {shape[-1]} values like "
                    f"{colour} colour, which would be read as X; pass axes, e.g. "
                    f"axes={suggestion!r} to restore each colour channel on its own"
                )
        return _DEFAULT_AXES[ndim]
    if not isinstance(axes, str):
        raise InputError(f"axes must be a string of letters from TCZYX, got {axes!r}")
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


def _from_tczyx(array: Any, axes: str) -> Any:
    """Back from 5D TCZYX to ``axes`` (numpy or dask; indexing keeps dask lazy)."""
    view = array[tuple(slice(None) if a in axes else 0 for a in CANONICAL)]
    present = [a for a in CANONICAL if a in axes]
    return view.transpose([present.index(a) for a in axes])


def _check_dtype(image: Any) -> None:
    try:
        dtype = np.dtype(image.dtype)
    except (AttributeError, TypeError):
        raise InputError(
            f"cannot read the pixel type of a {type(image).__name__}; pass a numpy, dask or "
            "zarr array"
        ) from None
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"complex images are not supported (dtype {dtype}); pass the magnitude")
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise InputError(f"unsupported pixel type {dtype}")


def _integer(name: str, value: Any, minimum: int, *, unit: str = "") -> int:
    """``value`` as an int of at least ``minimum``; integral floats (``32.0``) pass."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, numbers.Integral):
        if not math.isfinite(value) or not float(value).is_integer():
            raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise InputError(f"{name} must be at least {minimum}{unit}, got {value}")
    return value


def _number(name: str, value: Any) -> float:
    """``value`` as a finite float >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _pixel_sizes(sizes: Any) -> tuple[float | None, float | None, float | None] | None:
    if sizes is None:
        return None
    try:
        values = tuple(sizes)
    except TypeError:
        values = ()
    if len(values) != 3:
        raise InputError(f"pixel_size_um must be (z, y, x) in µm, got {sizes!r}")
    out = []
    for v in values:
        ok = v is None or (
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        )
        if not ok:
            raise InputError(
                f"pixel_size_um values must be positive numbers or None, got {sizes!r}"
            )
        out.append(None if v is None else float(v))
    return out[0], out[1], out[2]


def _check_values(image: np.ndarray, axes: str) -> None:
    """Refuse NaN / Inf pixels and values beyond float32 in an in-memory image.

    Counted plane by plane, so the check needs no second image-sized buffer.
    (Lazy inputs are checked tile by tile as they are read, see :mod:`napari_mscgm.tiling`.)
    """
    if image.dtype.kind != "f":
        return  # integers and bool are always finite and within float32's range
    bad, first, largest = 0, None, 0.0
    for index in np.ndindex(image.shape[:-2]):
        plane = image[index]
        finite = np.isfinite(plane)
        if not finite.all():
            if first is None:
                first = (*index, *np.unravel_index(int(np.argmin(finite)), plane.shape))
            bad += plane.size - int(np.count_nonzero(finite))
        elif bad == 0:
            largest = max(largest, float(np.abs(plane).max()))
    if bad:
        where = ", ".join(f"{a}={i}" for a, i in zip(axes, first, strict=True))
        raise InputError(
            f"the image has {bad} non-finite pixel(s) (NaN or Inf), the first at {where}; "
            "replace them first, e.g. with numpy.nan_to_num(image)"
        )
    if largest > FLOAT32_MAX:
        raise InputError(
            f"pixel values up to {largest:.3g} do not fit the float32 output "
            f"(largest {FLOAT32_MAX:.3g}); rescale the image first"
        )


def channel_percentiles(
    stack: Any, *, pmin: float, pmax: float, max_samples: int = MAX_PERCENTILE_SAMPLES
) -> np.ndarray:
    """Percentiles per channel of a TCZYX stack, over all of T, Z, Y and X.

    Stacks with more than ``max_samples`` values per channel are estimated from a
    regular strided subsample (whole planes are never all loaded). NaN and Inf
    are left out. When the two percentiles coincide (a mostly flat channel) the
    minimum and maximum are used instead; they are equal only for a constant channel.

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
            raise InputError(
                f"channel {ci} has no finite pixel values (all NaN or Inf); replace them "
                "first, e.g. with numpy.nan_to_num"
            )
        out[ci] = np.percentile(finite, [pmin, pmax])
        if out[ci, 1] <= out[ci, 0]:
            # A mostly flat channel (e.g. sparse beads on a zero background): fall back to
            # the full range; a constant channel keeps low == high (restored as itself).
            out[ci] = finite.min(), finite.max()
    return out


#: Smallest tile (input pixels) the out-of-memory fallback shrinks to.
MIN_TILE = 32


def std_path(path: str | os.PathLike) -> Path:
    """Where the std (uncertainty map) of ``path`` goes: ``x.ome.tif`` → ``x_std.ome.tif``."""
    path = Path(path)
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr"):
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)] + "_std" + name[-len(suffix) :])
    return path.with_name(path.stem + "_std" + path.suffix)


def _output_kind(out: Path) -> str:
    name = out.name.lower()
    if name.endswith(".zarr"):
        return "zarr"
    if name.endswith((".tif", ".tiff")):
        return "tiff"
    raise OutputError(f"{out}: output must end in .zarr (OME-Zarr) or .ome.tif / .tif")


def restore(
    image: Any,
    model: MSCGM | str,
    *,
    steps: int | None = None,
    seed: int | None = 0,
    eta: float | None = None,
    samples: int = 1,
    axes: str | None = None,
    tile_size: int | None = 256,
    overlap: int = 32,
    device: str | torch.device | None = None,
    batch_size: int = 4,
    precision: Literal["float32", "bfloat16"] = "float32",
    progress: Callable[[int, int], None] | None = None,
    return_metadata: bool = False,
    out: str | os.PathLike | None = None,
    client: Any = None,
    pixel_size_um: tuple[float | None, float | None, float | None] | None = None,
) -> Any:
    """Restore (super-resolve and denoise) a 2D–5D fluorescence image with MSCGM.

    Parameters
    ----------
    image : array-like
        numpy, dask or zarr array with 2 to 5 dimensions. Lazy inputs are read
        tile by tile, never wholly.
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
        Channels are restored independently, Z and T plane by plane.
    tile_size : int or None
        Edge of the YX tiles in INPUT pixels (256 by default); ``None`` restores
        whole planes. Tiles overlap by ``overlap`` input pixels and are blended
        with a raised-cosine window (no seams). The tile step is snapped down and
        the half-overlap up to a multiple of ``size_multiple / gcd(size_multiple,
        scale)`` input pixels, so every tile starts on the model's noise grid;
        the result does not depend on ``tile_size`` beyond float rounding near
        tile borders.
    overlap : int
        Overlap of neighbouring tiles in input pixels (32 by default); at most
        half of ``tile_size``.
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda[:i]"`` or ``"mps"``; the model's device when None.
    batch_size : int
        Tiles × samples per forward pass. On CUDA out of memory it is halved
        (then the tile) and the pass retried, with a ``ResourceWarning``.
    precision : {"float32", "bfloat16"}
        ``"bfloat16"`` runs the networks under autocast on CUDA (ignored elsewhere).
    progress : callable, optional
        ``progress(done, total)`` after each forward pass (a batch of tiles); an
        exception raised in it stops the run within one batch. Not called by
        distributed workers (with ``client=`` it is called once at the end).
    return_metadata : bool
        Also return the run metadata (package version, model, parameters, normalisation).
    out : path, optional
        Stream the result chunk by chunk into this file instead of returning it:
        ``*.zarr`` writes OME-Zarr (NGFF 0.4, run metadata in the attributes under
        ``"napari-mscgm"``), ``*.tif``/``*.ome.tif`` a tiled BigTIFF OME-TIFF (via a
        temporary OME-Zarr beside it). The axes written are the input's in ``TCZYX``
        order. With ``samples > 1`` the std goes to ``<name>_std.<ext>``.
        The write is atomic: everything goes to a hidden sibling
        ``.<name>.<pid>.part``, renamed to ``<name>`` only when complete, and
        removed on any error or ``KeyboardInterrupt``, so a partial result never
        appears under the final name. A write is not resumable: an interrupted
        run starts again from scratch, and the ``.part`` left by a killed process
        is removed by the next write of the same output. An existing file, or an
        earlier Zarr result, under the final name is replaced; any other
        directory is refused. The parent directory must exist (it is not created).
    client : distributed.Client, optional
        Run the same graph on a dask.distributed cluster. The model is shipped
        once and built once per worker; with ``out=`` workers write their chunks
        straight to the (shared) output path.
    pixel_size_um : tuple, optional
        ``(z, y, x)`` physical pixel size of the input in µm, written into ``out=``
        files (Y and X divided by the model's scale) and the metadata.

    Returns
    -------
    numpy.ndarray, dask.array.Array, MeanStd or Path
        numpy input: a float32 numpy array in input intensity units with the
        input's axes (Y and X multiplied by the model's scale). dask or zarr
        input: the same as a lazy dask array (computed tile by tile on demand).
        ``MeanStd(mean, std)`` when ``samples > 1``. With ``out=``: the path
        written (``MeanStd(path, std_path)`` when ``samples > 1``).
    metadata : dict
        Only with ``return_metadata=True``.

    Raises
    ------
    InputError
        The image or a parameter cannot be processed: more than 5 or fewer than 2
        dimensions, axes that do not fit the shape, an inferred layout that looks
        like RGB(A) colour (pass ``axes``), complex or non-numeric pixels, NaN or
        Inf pixels (with their count; lazy inputs report them when the tile is
        read), values beyond float32.
    OutputError
        ``out`` cannot be written: a missing or read-only directory, a full disk,
        an unsupported extension, or a non-Zarr directory in the way.
    ResourceError
        On the CPU, one forward pass over the largest tile (the whole plane when
        ``tile_size`` is None) would need more memory than is available; the
        message suggests a ``tile_size``.
    WeightsError
        ``model`` names a weights file that cannot be loaded.

    Notes
    -----
    Any numeric pixel type is accepted (bool as 0/1); the output is float32 in
    the input's units. Each channel is normalised by its percentiles; where they
    coincide (a mostly flat channel), by its minimum and maximum. A constant
    channel (all zero, say) is returned as that constant. Normalised values are
    clipped to ±10⁴ percentile ranges, so that a wild outlier cannot overflow the
    networks. Images of any size from 1×1 are processed (padded by reflection, then
    cropped). The input is never modified.
    """
    return _restore(
        image,
        model,
        steps=steps,
        seed=seed,
        eta=eta,
        samples=samples,
        axes=axes,
        tile_size=tile_size,
        overlap=overlap,
        device=device,
        batch_size=batch_size,
        precision=precision,
        progress=progress,
        return_metadata=return_metadata,
        out=out,
        client=client,
        pixel_size_um=pixel_size_um,
    )


def _restore(
    image: Any,
    model: MSCGM | str,
    *,
    steps: int | None,
    seed: int | None,
    eta: float | None,
    samples: int,
    axes: str | None,
    tile_size: int | None,
    overlap: int,
    device: Any,
    batch_size: int,
    precision: str,
    progress: Callable[[int, int], None] | None,
    return_metadata: bool,
    out: Any,
    client: Any,
    pixel_size_um: tuple | None,
    extra_metadata: dict | None = None,
    channel_names: list[str] | None = None,
) -> Any:
    """:func:`restore`, plus what the CLI adds to written files."""
    if isinstance(model, str | os.PathLike):
        model = load_model(model, device=device or "auto")
    elif not isinstance(model, MSCGM):
        raise InputError(
            f"model must be an MSCGM, a bundled model name or a weights path, "
            f"got {type(model).__name__}"
        )
    if client is None:
        target_device = model.device if device is None else resolve_device(device)
        if model.device != target_device:
            model = model.to(target_device)
        device_name = str(target_device)
    else:  # the workers' device, resolved there (the client may have no GPU)
        target_device = torch.device("cpu")
        device_name = str(device) if device is not None else model.device.type
    model.eval()
    steps = model.config.bbdp.default_steps if steps is None else _integer("steps", steps, 1)
    eta = model.config.bbdp.default_eta if eta is None else _number("eta", eta)
    samples = _integer("samples", samples, 1)
    batch_size = _integer("batch_size", batch_size, 1)
    if precision not in ("float32", "bfloat16"):
        raise InputError(f"precision must be 'float32' or 'bfloat16', got {precision!r}")
    if tile_size is not None:
        tile_size = _integer("tile_size", tile_size, 16, unit=" input pixels (or None)")
    overlap = _integer("overlap", overlap, 0)
    if tile_size is not None and 2 * overlap > tile_size:
        raise InputError(f"overlap {overlap} must be at most half of tile_size {tile_size}")
    if progress is not None and not callable(progress):
        raise InputError(f"progress must be a callable progress(done, total), got {progress!r}")
    if seed is None:
        seed = secrets.randbits(32)
    seed = _integer("seed", seed, 0)
    if seed >= 2**64:
        raise InputError(f"seed must be an integer in [0, 2**64), got {seed}")
    pixel_size_um = _pixel_sizes(pixel_size_um)

    ndim = getattr(image, "ndim", None)
    if not isinstance(ndim, int) or not hasattr(image, "shape"):
        raise InputError(f"expected an array, got {type(image).__name__}")
    if isinstance(image, np.ma.MaskedArray):
        raise InputError("masked arrays are not supported; fill the masked pixels first")
    if isinstance(image, np.ndarray) and type(image) is not np.ndarray:
        image = np.asarray(image)  # np.matrix and other subclasses index differently
    axes = canonical_axes(axes, ndim, shape=tuple(image.shape))
    _check_dtype(image)
    if not all(isinstance(n, numbers.Integral) for n in image.shape):
        raise InputError(
            f"the image's shape {tuple(image.shape)} is not fully known; for a dask array "
            "call .compute_chunk_sizes() first"
        )
    if any(n == 0 for n in image.shape):
        raise InputError(f"the image is empty (shape {tuple(image.shape)})")
    eager = isinstance(image, np.ndarray)
    if eager:
        _check_values(image, axes)
    stack = _to_tczyx(image, axes)
    _, c_size, _, height, width = stack.shape
    if c_size != 1 and model.channels != 1 and c_size != model.channels:
        raise InputError(f"the model expects {model.channels} channel(s), the image has {c_size}")
    out_path = None if out is None else Path(out)
    if out_path is not None:
        _output_kind(out_path)
        check_output_path(out_path)
        if samples > 1:
            check_output_path(std_path(out_path))

    norm = model.config.normalization
    percentiles = channel_percentiles(stack, pmin=norm.pmin, pmax=norm.pmax)
    job = _Job(
        stack=stack,
        spec=ModelSpec(model) if client is not None else model,
        model=model,
        image_shape=tuple(image.shape),
        axes=axes,
        seed=seed,
        steps=steps,
        eta=eta,
        samples=samples,
        batch_size=batch_size,
        precision=precision,
        device_name=device_name,
        percentiles=percentiles,
        progress=progress,
        eager=eager,
        out_path=out_path,
        client=client,
        pixel_size_um=pixel_size_um,
        extra_metadata=extra_metadata,
        channel_names=channel_names,
    )
    tile = None if tile_size is None else int(tile_size)
    overlap = int(overlap)
    try:
        while True:
            try:
                result, run = _run(job, tile, overlap)
                break
            except TileOOMError:
                current = max(height, width) if tile is None else tile
                if current // 2 < MIN_TILE:
                    raise OutputError(
                        f"out of {device_name} memory even with one {current}-pixel tile per "
                        "forward pass; use a smaller model, bfloat16 or the CPU"
                    ) from None
                tile = current // 2
                overlap = min(overlap, tile // 4)
                warnings.warn(
                    f"napari-mscgm: out of {device_name} memory with one tile per forward pass; "
                    f"retrying with tile_size={tile}, overlap={overlap}",
                    ResourceWarning,
                    stacklevel=2,
                )
    finally:
        if target_device.type == "cuda":
            torch.cuda.empty_cache()  # give the memory back to other processes / napari
    if not return_metadata:
        return result
    return result, _metadata(job, run)


@dataclass
class _Job:
    """What does not change when an out-of-memory retry changes the tiles."""

    stack: Any
    spec: Any
    model: MSCGM
    image_shape: tuple[int, ...]
    axes: str
    seed: int
    steps: int
    eta: float
    samples: int
    batch_size: int
    precision: str
    device_name: str
    percentiles: np.ndarray
    progress: Callable[[int, int], None] | None
    eager: bool
    out_path: Path | None
    client: Any
    pixel_size_um: tuple | None
    extra_metadata: dict | None
    channel_names: list[str] | None


def _metadata(job: _Job, run: RunSpec) -> dict:
    model = job.model
    scale = model.scale
    norm = model.config.normalization
    out_shape = [
        n * scale if a in "YX" else n for a, n in zip(job.axes, job.image_shape, strict=True)
    ]
    meta = {
        "package": "napari-mscgm",
        "version": __version__,
        "model": model.config.name,
        "model_sha256": model.sha256,
        "task": model.config.task,
        "scale": scale,
        "steps": run.steps,
        "seed": run.seed,
        "eta": run.eta,
        "samples": run.samples,
        "tile_size": run.tile_size,
        "overlap": run.overlap if run.tile_size is not None else None,
        "tiling": {
            "units": "input pixels",
            "stride_y": run.ys.chunks[0],
            "stride_x": run.xs.chunks[0],
            "halo": max(run.ys.halo, run.xs.halo),
            "blend": "raised cosine across each overlap",
        },
        "device": job.device_name,
        "precision": job.precision,
        "normalization": {
            "pmin": norm.pmin,
            "pmax": norm.pmax,
            "values": job.percentiles.tolist(),
        },
        "axes": job.axes,
        "input_shape": list(job.image_shape),
        "output_shape": out_shape,
    }
    if job.pixel_size_um is not None:
        z, y, x = job.pixel_size_um
        meta["input_pixel_size_um"] = [z, y, x]
        meta["output_pixel_size_um"] = [
            z,
            None if y is None else y / scale,
            None if x is None else x / scale,
        ]
    if job.extra_metadata:
        meta.update(job.extra_metadata)
    return meta


def _run(job: _Job, tile: int | None, overlap: int) -> tuple[Any, RunSpec]:
    """Build the graph for one tile layout and run it (or return it lazily)."""
    import dask.array as da

    from .tiling import _BATCH_LIMIT

    stack, model = job.stack, job.model
    t_size, c_size, z_size, height, width = stack.shape
    align = tile_alignment(model.size_multiple, model.scale)
    ys = plan_axis(height, tile_size=tile, overlap=overlap, align=align)
    xs = plan_axis(width, tile_size=tile, overlap=overlap, align=align)
    group = max(1, job.batch_size // job.samples)
    run = RunSpec(
        seed=job.seed,
        steps=job.steps,
        eta=job.eta,
        samples=job.samples,
        batch_size=job.batch_size,
        precision=job.precision,
        device=job.device_name,
        percentiles=job.percentiles,
        scale=model.scale,
        ys=ys,
        xs=xs,
        progress=Progress(None, 0),
        tile_size=tile,
        overlap=overlap,
    )
    if job.client is None and next(model.parameters()).device.type == "cpu":
        _check_memory(job, ys, xs, tile)
    total = forward_passes(run, group) * t_size * c_size * z_size
    run.progress = Progress(None if job.client is not None else job.progress, total)
    if isinstance(stack, np.ndarray):
        stack = da.from_array(stack, chunks=(1, 1, 1, ys.chunks, xs.chunks), asarray=False)
    job.stack = stack
    try:
        if job.out_path is not None:
            result = _write(job, run, group)
        elif job.eager:
            graph = restore_graph(stack, job.spec, run, group=group)
            if job.client is not None:
                values = job.client.compute(graph).result()
            else:
                values = graph.compute(scheduler="sync")
            result = _split(values, job.axes)
        else:
            return _split(restore_graph(stack, job.spec, run, group=group), job.axes), run
    finally:
        _BATCH_LIMIT.pop(run.token, None)
    if job.client is not None and job.progress is not None:
        job.progress(total, total)
    return result, run


#: Bytes per target pixel and sample held besides the forward pass: the tile's
#: float64 result, its denormalised and weighted copies and the output chunk.
_POSTPROCESS_BYTES = 64


def _pass_bytes(model: MSCGM, tile_h: int, tile_w: int, batch: int, samples: int) -> int:
    """CPU memory of one forward pass over ``batch`` tiles of ``tile_h × tile_w`` input pixels."""
    h, w = tile_h * model.scale, tile_w * model.scale
    return model.forward_bytes(h, w, batch) + _POSTPROCESS_BYTES * h * w * max(batch, samples)


def _check_memory(job: _Job, ys: Any, xs: Any, tile: int | None) -> None:
    """Refuse, before starting, a CPU run whose forward pass cannot fit in the free memory.

    Running out of CPU memory is not recoverable like on a GPU: the allocation fails
    with a bare RuntimeError, or the operating system kills the process.
    """
    available = available_memory()
    if available is None:
        return
    model = job.model
    tile_h = max(b - a for a, b in ys.tiles)
    tile_w = max(b - a for a, b in xs.tiles)
    group = max(1, job.batch_size // job.samples)
    batch = min(job.batch_size, min(group, len(xs.tiles)) * job.samples)
    needed = _pass_bytes(model, tile_h, tile_w, batch, job.samples)
    if needed <= available:
        return
    height, width = job.stack.shape[-2:]
    # Tiles come batch_size at a time: the suggestion must fit with the batch asked for,
    # and be smaller than the tiles that did not fit.
    suggestion = 256 if tile is None else max(MIN_TILE, min(256, tile // 2))

    def fits(size: int, tiles: int) -> bool:
        return _pass_bytes(model, size, size, tiles, job.samples) <= available

    while suggestion > MIN_TILE and not fits(suggestion, job.batch_size):
        suggestion //= 2
    if tile is None or (tile_h == height and tile_w == width):
        what = f"restoring a {height}×{width} plane untiled"
    else:
        what = f"restoring {tile_h}×{tile_w} tiles, {batch} per forward pass,"
    advice = f"use tile_size={suggestion}"
    if not fits(suggestion, job.batch_size):
        advice += " and batch_size=1"
    raise ResourceError(
        f"{what} needs about {_gb(needed)} of memory but {_gb(available)} is available; {advice}"
    )


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n < 1e10 else f"{n / 1e9:.0f} GB"


def _split(values: Any, axes: str) -> Any:
    mean = _from_tczyx(values[0], axes)
    if values.shape[0] == 1:
        return mean
    return MeanStd(mean, _from_tczyx(values[1], axes))


#: Tiles per graph when streaming to ``out=``: the stack is cut into slabs of
#: whole planes holding at most this many tiles (at least one plane), so the
#: graph, and the scheduler's memory for it (a few MB per 100 tiles), does not
#: grow with the stack. 1024 tiles keep a cluster of dozens of workers busy.
MAX_TILES_PER_GRAPH = 1024


def _slabs(shape: tuple[int, ...], planes: int) -> list[tuple[int, int, int, int]]:
    """``(t, c, z0, z1)`` slabs of at most ``planes`` Z planes covering a TCZYX stack."""
    t_n, c_n, z_n = shape[:3]
    return [
        (t, c, z0, min(z_n, z0 + planes))
        for t in range(t_n)
        for c in range(c_n)
        for z0 in range(0, z_n, planes)
    ]


def _write(job: _Job, run: RunSpec, group: int) -> Any:
    """Stream the restoration into ``job.out_path`` (and its std file) atomically.

    The stack is restored slab by slab (a bounded graph each); within a slab the
    scheduler writes each output chunk as soon as its tiles are done.
    """
    import dask
    import dask.array as da

    from .io import (
        ChunkWriter,
        create_ome_zarr,
        replace_path,
        temporary_path,
        write_error,
        write_ome_tiff_from_zarr,
    )

    out, axes, scale, client = job.out_path, job.axes, job.model.scale, job.client
    stack = job.stack
    t_n, c_n, z_n, height, width = stack.shape
    metadata = _metadata(job, run)
    present = "".join(a for a in CANONICAL if a in axes)
    z_um, y_um, x_um = job.pixel_size_um or (None, None, None)
    sizes = (z_um, None if y_um is None else y_um / scale, None if x_um is None else x_um / scale)
    k_n = 2 if run.samples > 1 else 1
    targets = [out] if k_n == 1 else [out, std_path(out)]
    kind = _output_kind(out)
    full = {"T": t_n, "C": c_n, "Z": z_n, "Y": height * scale, "X": width * scale}
    shape = tuple(full[a] for a in present)
    # One block per plane along T, C and Z: the Zarr chunks are then one plane deep, so
    # no chunk is shared by two blocks (no read-modify-write of a deep chunk per plane).
    one = {a: (1,) * full[a] for a in "TCZ"}
    chunks = tuple(
        one[a] if a in one else tuple(v * scale for v in (run.ys if a == "Y" else run.xs).chunks)
        for a in present
    )
    per_plane = len(run.ys.cores) * len(run.xs.cores)
    planes = max(1, MAX_TILES_PER_GRAPH // per_plane)
    stores, temps = [], []
    try:
        for k, target in enumerate(targets):
            name = target.name + ".zarr" if kind == "tiff" else target.name
            tmp = temporary_path(target.with_name(name))
            temps.append(tmp)
            try:
                array = create_ome_zarr(
                    tmp,
                    shape=shape,
                    chunks=chunks,
                    axes=present,
                    pixel_size_um=sizes,
                    metadata=metadata if k == 0 else {**metadata, "content": "std"},
                    channel_names=job.channel_names,
                )
            except OutputError as exc:  # name the output asked for, not the scratch store
                if isinstance(exc.__cause__, OSError):
                    raise write_error(target, exc.__cause__) from None
                raise
            stores.append(ChunkWriter(array, target))
        for t, c, z0, z1 in _slabs(stack.shape, planes):
            slab = restore_graph(
                stack[t : t + 1, c : c + 1, z0:z1], job.spec, run, group=group, offset=(t, c, z0)
            )
            where = {"T": slice(t, t + 1), "C": slice(c, c + 1), "Z": slice(z0, z1)}
            region = tuple(where.get(a, slice(None)) for a in present)
            index = tuple(slice(None) if a in present else 0 for a in CANONICAL)
            # One store call, so mean and std share each tile's computation.
            stored = da.store(
                [slab[k][index] for k in range(k_n)],
                stores,
                regions=[region] * k_n,
                lock=False,
                compute=False,
            )
            dask.compute(stored, scheduler=client if client is not None else "sync")
        for k, (target, tmp) in enumerate(zip(targets, temps, strict=True)):
            if kind == "zarr":
                try:
                    replace_path(tmp, target)
                except OSError as exc:
                    raise write_error(target, exc) from None
            else:
                write_ome_tiff_from_zarr(
                    target,
                    stores[k].array,
                    axes=present,
                    pixel_size_um=sizes,
                    metadata=metadata if k == 0 else {**metadata, "content": "std"},
                    channel_names=job.channel_names,
                )
    finally:
        for tmp in temps:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return targets[0] if len(targets) == 1 else MeanStd(targets[0], targets[1])
