"""``restore``: from an N-D array in intensity units to a restored float32 array.

The data flow, one module each: check the input (:mod:`.checks`, :mod:`.axes`) →
fit the per-channel percentile normaliser on a bounded subsample
(:class:`~napari_mscgm.core.normalize.PercentileNormalizer`) → lay out overlapping
YX tiles per plane (:mod:`.layout`) → build one dask graph (:mod:`.graph`) whose
tasks restore tiles in batches (:mod:`.batching`) and blend them → compute it
eagerly, return it lazily, stream it into a file (:mod:`.write`), or run it on a
dask.distributed cluster (:mod:`.distributed`). Noise is keyed by (seed, sample,
plane, absolute pixel), so results do not depend on tile size, tile order, batching
or which process runs which tile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .. import __version__
from ..config import NormalizationConfig, RestoreOptions, RunMetadata
from ..config.metadata import NormalizationRecord, TilingRecord
from ..core.mscgm import MSCGM
from ..core.normalize import PercentileNormalizer
from ..device import resolve_device, set_threads
from ..errors import InputError
from ..io.atomic import check_output_path
from ..io.read import ImageData
from .axes import canonical_axes, from_tczyx, to_tczyx
from .batching import TileOOMError
from .checks import check_array, check_not_empty, check_values
from .consistency import ConsistencyCheck, check_stack
from .distributed import ModelSpec
from .graph import restore_graph
from .layout import AxisPlan, plan_axis, tile_alignment
from .memory import check_memory
from .spec import MeanStd, Progress, RunSpec
from .write import Destination, consistency_map_path, output_kind, std_path, write_result

__all__ = ["restore"]

_DEFAULTS = {name: field.default for name, field in RestoreOptions.model_fields.items()}


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
    threads: int | None = None,
    pixel_size_um: tuple[float | None, float | None, float | None] | None = None,
    consistency: bool = True,
    consistency_map: bool = False,
    options: RestoreOptions | None = None,
    progress: Any = None,
    return_metadata: bool = False,
    out: str | os.PathLike | None = None,
    client: Any = None,
) -> Any:
    """Restore (super-resolve and denoise) a 2D–5D fluorescence image with MSCGM.

    Parameters
    ----------
    image : array-like or ImageData
        numpy, dask or zarr array with 2 to 5 dimensions, or an
        :class:`~napari_mscgm.io.ImageData` from :func:`~napari_mscgm.io.read_image`
        (its axes, pixel size, channel names and name are then used). Lazy inputs
        are read tile by tile, never wholly.
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
    threads : int, optional
        CPU threads for torch; None leaves torch's setting (and the caller's) alone.
    batch_size : int
        Tiles × samples per forward pass. On CUDA out of memory it is halved
        (then the tile) and the pass retried, with a ``ResourceWarning``.
    precision : {"float32", "bfloat16"}
        ``"bfloat16"`` runs the networks under autocast on CUDA (ignored elsewhere).
    consistency : bool
        Check the result against the input with the model's physics (default on; see
        :mod:`napari_mscgm.restoration.consistency`): the scores go into the metadata under
        ``"consistency"``. Lazy results are not computed here, so neither is their check.
    consistency_map : bool
        With ``out=``, also write the noise-normalised residual map (on the input's grid)
        to ``<name>_consistency.<ext>``; :func:`napari_mscgm.check_consistency` gives it
        as an array.
    options : RestoreOptions, optional
        All of the options above in one validated object (what the CLI and the widget
        pass); then leave the option keywords at their defaults.
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
    given = {
        "steps": steps, "seed": seed, "eta": eta, "samples": samples, "axes": axes,
        "tile_size": tile_size, "overlap": overlap, "device": device,
        "batch_size": batch_size, "precision": precision, "threads": threads,
        "pixel_size_um": pixel_size_um, "consistency": consistency,
        "consistency_map": consistency_map,
    }  # fmt: skip
    if options is None:
        options = RestoreOptions(**given)
    elif any(value is not _DEFAULTS[k] and value != _DEFAULTS[k] for k, value in given.items()):
        raise InputError("pass either options= or the option keywords, not both")
    result, metadata = _restore(image, model, options, progress=progress, out=out, client=client)
    return (result, metadata.to_dict()) if return_metadata else result


@dataclass
class _Request:
    """A checked input and everything about it that no out-of-memory retry changes."""

    stack: Any  # 5D TCZYX, numpy or dask
    axes: str
    shape: tuple[int, ...]  # the input's own
    eager: bool
    model: MSCGM
    options: RestoreOptions
    device_name: str
    normalizer: PercentileNormalizer
    progress: Any
    out: Path | None
    client: Any
    source: ImageData | None

    @property
    def spec(self) -> Any:
        """What the graph ships: the model itself, or its picklable recipe for a cluster."""
        return ModelSpec(self.model) if self.client is not None else self.model


def _restore(
    image: Any, model: Any, options: RestoreOptions, *, progress: Any, out: Any, client: Any
) -> tuple[Any, RunMetadata]:
    source = image if isinstance(image, ImageData) else None
    if source is not None:
        options = _with_source(options, source)
        image = source.data
    model = _as_model(model, options.device, client)
    set_threads(options.threads)
    model, device_name = _place(model, options.device, client)
    if progress is not None and not callable(progress):
        raise InputError(f"progress must be a callable progress(done, total), got {progress!r}")
    request = _prepare(image, model, options, device_name, progress, out, client, source)
    try:
        return _run_with_retries(request)
    finally:
        if client is None and model.device.type == "cuda":
            torch.cuda.empty_cache()  # give the memory back to other processes / napari


def _with_source(options: RestoreOptions, source: ImageData) -> RestoreOptions:
    """An :class:`ImageData` is TCZYX and knows its pixel size."""
    if options.axes not in (None, "TCZYX"):
        raise InputError(f"an ImageData is TCZYX; got axes={options.axes!r}")
    update: dict[str, Any] = {"axes": "TCZYX"}
    if options.pixel_size_um is None:
        update["pixel_size_um"] = RestoreOptions(pixel_size_um=source.pixel_size_um).pixel_size_um
    return options.model_copy(update=update)


def _as_model(model: Any, device: str | None, client: Any) -> MSCGM:
    if isinstance(model, str | os.PathLike):
        from ..model_io.weights import load_model

        # With a cluster the workers pick their device; the client keeps a CPU copy to ship.
        return load_model(model, device="cpu" if client is not None else (device or "auto"))
    if not isinstance(model, MSCGM):
        raise InputError(
            f"model must be an MSCGM, a bundled model name or a weights path, "
            f"got {type(model).__name__}"
        )
    return model


def _place(model: MSCGM, device: str | None, client: Any) -> tuple[MSCGM, str]:
    """The model on the device it runs on, and that device's name for the record."""
    model.eval()
    if client is not None:  # the workers' device, resolved there (the client may have no GPU)
        return model, str(device) if device is not None else model.device.type
    target = model.device if device is None else resolve_device(device)
    if model.device != target:
        model = model.to(target)
    return model, str(target)


def _prepare(
    image: Any,
    model: MSCGM,
    options: RestoreOptions,
    device_name: str,
    progress: Any,
    out: Any,
    client: Any,
    source: ImageData | None,
) -> _Request:
    """Check the input and the output, and fit the normaliser."""
    image = check_array(image)
    axes = canonical_axes(options.axes, image.ndim, shape=tuple(image.shape))
    check_not_empty(tuple(image.shape))
    eager = isinstance(image, np.ndarray)
    if eager:
        check_values(image, axes)
    stack = to_tczyx(image, axes)
    c_size = stack.shape[1]
    if c_size != 1 and model.channels != 1 and c_size != model.channels:
        raise InputError(f"the model expects {model.channels} channel(s), the image has {c_size}")
    out_path = None if out is None else Path(out)
    if out_path is not None:
        output_kind(out_path)
        check_output_path(out_path)
        if options.samples > 1:
            check_output_path(std_path(out_path))
        if options.consistency and options.consistency_map:
            check_output_path(consistency_map_path(out_path))
    norm = model.config.normalization
    normalizer = PercentileNormalizer(norm.pmin, norm.pmax).fit_stack(stack)
    return _Request(
        stack, axes, tuple(image.shape), eager, model, options, device_name, normalizer,
        progress, out_path, client, source,
    )  # fmt: skip


def _run_with_retries(request: _Request) -> tuple[Any, RunMetadata]:
    """Run with the tiles asked for; on one-tile out-of-memory, with tiles half as large."""
    tile, overlap = request.options.tile_size, request.options.overlap
    while True:
        run = _plan(request, tile, overlap)
        try:
            return _run(request, run)
        except TileOOMError:
            plane = tuple(request.stack.shape[-2:])
            tile, overlap = run.oom.smaller_tiles(tile, overlap, plane, request.device_name)


def _plan(request: _Request, tile: int | None, overlap: int) -> RunSpec:
    model, options = request.model, request.options
    height, width = request.stack.shape[-2:]
    align = tile_alignment(model.size_multiple, model.scale)
    ys = plan_axis(height, tile_size=tile, overlap=overlap, align=align)
    xs = plan_axis(width, tile_size=tile, overlap=overlap, align=align)
    steps, eta = model.sampling(options.steps, options.eta)
    # The tiles actually used (an out-of-memory retry shrinks them) are what is recorded.
    layout = options.model_copy(update={"tile_size": tile, "overlap": overlap})
    return RunSpec(
        layout, steps, eta, request.normalizer, model.scale, ys, xs, request.device_name,
        calibration=model.config.calibration,
    )  # fmt: skip


def _group(options: RestoreOptions) -> int:
    """Tiles of a row that share forward passes."""
    return max(1, options.batch_size // options.samples)


def _run(request: _Request, run: RunSpec) -> tuple[Any, RunMetadata]:
    """Build the graph for one tile layout and run it (or return it lazily)."""
    import dask.array as da

    stack, model, options = request.stack, request.model, run.options
    t_size, c_size, z_size, height, width = stack.shape
    group = _group(options)
    if request.client is None and model.device.type == "cpu":
        check_memory(
            model, run.ys, run.xs, tile=options.tile_size, batch_size=options.batch_size,
            samples=options.samples, plane=(height, width),
        )  # fmt: skip
    total = run.forward_passes(group) * t_size * c_size * z_size
    callback = None if request.client is not None else request.progress
    run.progress = Progress(callback, total)
    if isinstance(stack, np.ndarray):
        stack = da.from_array(stack, chunks=(1, 1, 1, run.ys.chunks, run.xs.chunks), asarray=False)
    metadata = _metadata(request, run)
    check = _consistency_check(request)
    if request.out is not None:
        dest = Destination(
            request.out, request.axes, options.pixel_size_um or (None, None, None), metadata,
            request.source.channel_names if request.source is not None else None,
            check, options.consistency_map,
        )  # fmt: skip
        result, metadata = write_result(
            dest, stack, request.spec, run, group=group, client=request.client
        )
    else:
        graph = restore_graph(stack, request.spec, run, group=group)
        if not request.eager:  # nothing is computed now: neither is the check
            return _split(graph, request.axes), metadata.with_consistency(NOT_CHECKED)
        if request.client is not None:
            values = request.client.compute(graph).result()
        else:
            values = graph.compute(scheduler="sync")
        result = _split(values, request.axes)
        if check is not None:
            record = check_stack(check, request.stack, lambda index: values[0][index])
            metadata = metadata.with_consistency(record)
    if request.client is not None and request.progress is not None:
        request.progress(total, total)
    return result, metadata


#: The record of a lazy result, which is computed only when it is used.
NOT_CHECKED = {
    "rsp": None,
    "rse": None,
    "inconsistent_fraction": None,
    "verdict": "not checked",
    "reason": "a lazy result; check it with napari_mscgm.check_consistency",
}


def _consistency_check(request: _Request) -> ConsistencyCheck | None:
    if not request.options.consistency:
        return None
    return ConsistencyCheck(request.model.config.physics, request.model.scale)


def _split(values: Any, axes: str) -> Any:
    mean = from_tczyx(values[0], axes)
    if values.shape[0] == 1:
        return mean
    return MeanStd(mean, from_tczyx(values[1], axes))


def _metadata(request: _Request, run: RunSpec) -> RunMetadata:
    model, options = request.model, run.options
    scale = model.scale
    norm: NormalizationConfig = model.config.normalization
    out_shape = [
        n * scale if a in "YX" else n for a, n in zip(request.axes, request.shape, strict=True)
    ]
    tiled = options.tile_size is not None
    meta = RunMetadata(
        version=__version__,
        model=model.config.name,
        model_sha256=model.sha256,
        task=model.config.task,
        scale=scale,
        steps=run.steps,
        seed=run.seed,
        eta=run.eta,
        samples=run.samples,
        tile_size=options.tile_size,
        overlap=options.overlap if tiled else None,
        tiling=_tiling(run.ys, run.xs),
        device=request.device_name,
        precision=options.precision,
        normalization=NormalizationRecord(
            pmin=norm.pmin, pmax=norm.pmax, values=request.normalizer.to_list()
        ),
        axes=request.axes,
        input_shape=list(request.shape),
        output_shape=out_shape,
    )
    if run.samples > 1:
        calibrated = run.calibration is not None
        meta = meta.model_copy(
            update={"uncertainty": "calibrated" if calibrated else "sample spread"}
        )
    if options.pixel_size_um is not None:
        meta = meta.with_pixel_size(options.pixel_size_um)
    if request.source is not None:
        meta = meta.with_input(request.source.name, request.source.source)
    return meta


def _tiling(ys: AxisPlan, xs: AxisPlan) -> TilingRecord:
    return TilingRecord(stride_y=ys.chunks[0], stride_x=xs.chunks[0], halo=max(ys.halo, xs.halo))
