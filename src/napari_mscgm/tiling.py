"""Tiling of N-D stacks into overlapping YX tiles, and their seamless blending, as a dask graph.

Layout (per axis, in INPUT pixels). The axis is cut into *cores* of length
``stride`` (the chunks of the output); every tile is its core plus a *halo* of
``halo`` pixels on each side (clipped at the image edge)::

    tile_size = stride + 2 * halo        overlap = 2 * halo

Neighbouring tiles therefore overlap by ``overlap`` pixels centred on their
common core boundary. In that band the two tiles are blended with raised-cosine
weights that sum to exactly one (a partition of unity), so no normalisation is
needed and no seam is visible; away from boundaries a tile's weight is 1.

Alignment. The coordinate-keyed noise (:mod:`napari_mscgm.noise`) needs every
tile origin on the target grid to be a multiple of ``model.size_multiple``.
Tile origins (``k * stride - halo``) are multiples of ``align`` input pixels,
with ``align * scale`` a multiple of ``size_multiple``: ``stride`` is snapped
down and ``halo`` up to multiples of ``align``. Tile ends need no alignment
(the model pads bottom/right).

Graph. For each plane ``(t, c, z)``: input blocks = cores; one *group* task per
run of up to ``group`` tiles in a tile row (they share forward passes); one
*output* task per core, which adds the weighted parts of the (up to 3 × 3)
tiles overlapping it. Each tile is computed once, each output chunk written
once, and the graph is the same for the local scheduler and a dask.distributed
cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import InputError, ResourceError
from .noise import NoiseKey

__all__ = [
    "AxisPlan",
    "ModelSpec",
    "TileOOMError",
    "blend_weights",
    "plan_axis",
    "restore_graph",
    "tile_alignment",
]


#: Normalised inputs are clipped to ± this many percentile ranges: far beyond any real
#: signal (a saturated pixel of a dim 16-bit image is a few hundred), small enough that
#: the networks' float32 arithmetic cannot overflow.
NORMALISED_LIMIT = 1e4
#: Largest magnitude the float32 output can hold.
FLOAT32_MAX = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------- layout
def tile_alignment(size_multiple: int, scale: int) -> int:
    """Input-pixel step that puts target-grid origins on multiples of ``size_multiple``."""
    return size_multiple // math.gcd(size_multiple, scale)


@dataclass(frozen=True)
class AxisPlan:
    """The tiling of one spatial axis, in input pixels.

    Attributes
    ----------
    cores : tuple of (int, int)
        ``[start, stop)`` of each core; they partition the axis.
    tiles : tuple of (int, int)
        ``[start, stop)`` of each tile: its core plus the halo, clipped to the axis.
    halo : int
        Pixels each tile reaches past its core (half the overlap).
    """

    cores: tuple[tuple[int, int], ...]
    tiles: tuple[tuple[int, int], ...]
    halo: int

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in self.cores)


def plan_axis(length: int, *, tile_size: int | None, overlap: int, align: int) -> AxisPlan:
    """Cut an axis of ``length`` input pixels into aligned overlapping tiles.

    ``tile_size=None`` (or a tile at least as long as the axis) gives one tile.
    A remainder core shorter than the overlap is merged into the previous core,
    so blending ramps never overlap each other; when alignment forces it, a
    tile can be slightly longer than ``tile_size``.
    """
    if tile_size is None or length <= tile_size:
        return AxisPlan(((0, length),), ((0, length),), 0)
    halo = -(-(overlap // 2) // align) * align if overlap > 0 else 0
    stride = max(align, (tile_size - 2 * halo) // align * align)
    # Snapping may leave a core shorter than the overlap: grow it, so ramps never meet.
    stride = max(stride, 2 * halo)
    starts = list(range(0, length, stride))
    if len(starts) > 1 and length - starts[-1] < max(2 * halo, 1):
        starts.pop()
    cores = tuple(zip(starts, [*starts[1:], length], strict=True))
    tiles = tuple((max(0, a - halo), min(length, b + halo)) for a, b in cores)
    return AxisPlan(cores, tiles, halo)


def blend_weights(plan: AxisPlan, index: int, scale: int) -> np.ndarray:
    """Blending weight of tile ``index`` along one axis, on the target grid.

    Raised cosine across each ``2 * halo`` band centred on a core boundary; the
    weights of the two tiles sharing a band sum to 1 at every pixel.
    """
    t0, t1 = (v * scale for v in plan.tiles[index])
    c0, c1 = (v * scale for v in plan.cores[index])
    band = 2 * plan.halo * scale
    x = np.arange(t0, t1, dtype=np.float64)
    w = np.ones_like(x)
    if band:
        if index > 0:  # rising ramp over [c0 - halo, c0 + halo)
            u = np.clip((x - (c0 - band / 2) + 0.5) / band, 0.0, 1.0)
            w *= 0.5 * (1.0 - np.cos(np.pi * u))
        if index < len(plan.cores) - 1:  # falling ramp over [c1 - halo, c1 + halo)
            u = np.clip((x - (c1 - band / 2) + 0.5) / band, 0.0, 1.0)
            w *= 0.5 * (1.0 + np.cos(np.pi * u))
    return w.astype(np.float32)


# ---------------------------------------------------------------- model shipping
class ModelSpec:
    """A picklable recipe for a model: its config JSON and state dict, built once per process.

    Sent to dask.distributed workers instead of the module; each worker builds the
    model the first time and keeps it in a cache keyed by ``token`` (the weights'
    SHA-256, or a digest of the in-memory state) and device.
    """

    def __init__(self, model: Any) -> None:
        self.config_json = model.metadata_json()
        self.state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        self.sha256 = model.sha256
        if model.sha256:
            self.token = model.sha256
        else:
            digest = hashlib.sha256(self.config_json.encode())
            for k in sorted(self.state):
                digest.update(k.encode())
                digest.update(np.ascontiguousarray(self.state[k]).tobytes())
            self.token = digest.hexdigest()


_MODEL_CACHE: dict[tuple[str, str], Any] = {}
_MODEL_LOCK = threading.Lock()


def resolve_model(spec: Any, device: str) -> Any:
    """The model a task runs: ``spec`` itself if it is a model, else the cached build of it."""
    if not isinstance(spec, ModelSpec):
        return spec
    from .config import ModelConfig
    from .device import resolve_device
    from .model import MSCGM

    key = (spec.token, device)
    with _MODEL_LOCK:
        model = _MODEL_CACHE.get(key)
        if model is None:
            model = MSCGM(ModelConfig.model_validate_json(spec.config_json))
            model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in spec.state.items()})
            model.sha256 = spec.sha256
            model = model.eval().to(resolve_device(device))
            _MODEL_CACHE[key] = model
    return model


# ---------------------------------------------------------------- run description
class TileOOMError(ResourceError):
    """Out of device memory with a single tile per forward pass: the tile must shrink."""


class Progress:
    """Thread-safe ``progress(done, total)`` counter over forward passes."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0
        self._lock = threading.Lock()

    def tick(self) -> None:
        if self.callback is None:
            return
        with self._lock:
            self.done += 1
            done = min(self.done, self.total)
        self.callback(done, self.total)

    def __reduce__(self):  # callbacks stay on the client; workers report nothing
        return (Progress, (None, self.total))


#: Tiles per forward pass after an OOM, per run token (per process).
_BATCH_LIMIT: dict[str, int] = {}


@dataclass
class RunSpec:
    """Everything a group task needs besides its pixels (small; pickled to workers)."""

    seed: int
    steps: int
    eta: float
    samples: int
    batch_size: int
    precision: str
    device: str
    percentiles: np.ndarray
    scale: int
    ys: AxisPlan
    xs: AxisPlan
    progress: Progress
    tile_size: int | None = None
    overlap: int = 0
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


def forward_passes(run: RunSpec, group: int) -> int:
    """Number of forward passes (``progress`` ticks) of one plane, before any OOM retry."""
    total = 0
    for _ in run.ys.tiles:
        for g0 in range(0, len(run.xs.tiles), group):
            widths: dict[int, int] = {}
            for x0, x1 in run.xs.tiles[g0 : g0 + group]:
                widths[x1 - x0] = widths.get(x1 - x0, 0) + 1
            total += sum(-(-n * run.samples // run.batch_size) for n in widths.values())
    return total


def _is_oom(exc: BaseException) -> bool:
    """Out of device memory: CUDA's ``OutOfMemoryError``, MPS's / HIP's RuntimeError, or
    the CPU allocator's ("can't allocate memory")."""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom | MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _sample_items(model: Any, run: RunSpec, items: list, plane: tuple[int, int, int]) -> list:
    """Run ``model.sample`` over ``(tile_input, sample, y0, x0)`` items in batches.

    Items of equal shape share forward passes of up to ``batch_size``; on CUDA out
    of memory the batch is halved (and remembered for this run) and retried.
    """
    device = next(model.parameters()).device
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if run.precision == "bfloat16" and device.type == "cuda"
        else contextlib.nullcontext()
    )
    out: list = [None] * len(items)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, item in enumerate(items):
        by_shape.setdefault(item[0].shape[-2:], []).append(i)
    for indices in by_shape.values():
        pos = 0
        while pos < len(indices):
            batch = min(run.batch_size, _BATCH_LIMIT.get(run.token, run.batch_size))
            chosen = indices[pos : pos + batch]
            degraded = torch.cat([items[i][0] for i in chosen]).to(device)
            degraded_shape = tuple(degraded.shape[-2:])
            keys = [
                NoiseKey(
                    seed=run.seed, sample=items[i][1], plane=plane, y0=items[i][2], x0=items[i][3]
                )
                for i in chosen
            ]
            try:
                with autocast:
                    restored = model.sample(degraded, keys=keys, steps=run.steps, eta=run.eta)
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                del degraded
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                if len(chosen) == 1:
                    h, w = degraded_shape
                    raise TileOOMError(
                        f"out of {device.type} memory with one {h}×{w} tile per forward pass "
                        f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                        "pass a smaller tile_size, precision='bfloat16' or device='cpu'"
                    ) from None
                _BATCH_LIMIT[run.token] = len(chosen) // 2
                warnings.warn(
                    f"napari-mscgm: out of {device.type} memory with {len(chosen)} tiles per "
                    f"forward pass; retrying with {len(chosen) // 2}",
                    ResourceWarning,
                    stacklevel=2,
                )
                continue
            restored = restored.float()[:, 0].cpu().numpy()
            for j, i in enumerate(chosen):
                out[i] = restored[j]
            pos += len(chosen)
            run.progress.tick()
    return out


@dataclass(frozen=True)
class _Group:
    """Static description of one group task."""

    plane: tuple[int, int, int]
    row: int
    cols: tuple[int, ...]
    # Input-block index ranges gathered for this group: rows [r0, r1), cols [q0, q1).
    r0: int
    r1: int
    q0: int
    q1: int


def _restore_group(spec: Any, run: RunSpec, group: _Group, blocks: list) -> list:
    """Restore the tiles of one group; returns ``(K, h, w)`` weighted outputs per tile."""
    plane_in = np.block(blocks)
    plane_in = plane_in.reshape(plane_in.shape[-2:])
    oy = run.ys.cores[group.r0][0]
    ox = run.xs.cores[group.q0][0]
    c = group.plane[1]
    low, high = run.percentiles[c]
    span = high - low if high > low else 1.0
    y0, y1 = run.ys.tiles[group.row]
    tiles = []
    for j in group.cols:
        x0, x1 = run.xs.tiles[j]
        tile = np.asarray(plane_in[y0 - oy : y1 - oy, x0 - ox : x1 - ox], dtype=np.float64)
        _check_tile(tile, group.plane, y0, x0)
        tiles.append(tile)
    if high <= low and all((tile == low).all() for tile in tiles):
        # A constant channel has nothing to restore: it comes back as itself.
        return _constant_group(run, group, tiles, low)
    model = resolve_model(spec, run.device)
    device = next(model.parameters()).device
    items = []
    for j, tile in zip(group.cols, tiles, strict=True):
        x0 = run.xs.tiles[j][0]
        # Clipped so that an absurd outlier cannot overflow float32 inside the networks.
        norm = np.clip((tile - low) / span, -NORMALISED_LIMIT, NORMALISED_LIMIT)
        degraded = model.upsample(torch.from_numpy(norm.astype(np.float32))[None, None].to(device))
        for s in range(run.samples):
            items.append((degraded, s, y0 * run.scale, x0 * run.scale))
    restored = _sample_items(model, run, items, group.plane)
    wy = blend_weights(run.ys, group.row, run.scale)
    outputs = []
    for n, j in enumerate(group.cols):
        stack = np.stack(restored[n * run.samples : (n + 1) * run.samples]).astype(np.float64)
        stack = stack * span + low
        weight = wy[:, None] * blend_weights(run.xs, j, run.scale)[None, :]
        parts = [stack.mean(axis=0)]
        if run.samples > 1:
            parts.append(stack.std(axis=0, ddof=1))
        weighted = np.clip(np.stack(parts) * weight, -FLOAT32_MAX, FLOAT32_MAX)
        outputs.append(weighted.astype(np.float32))
    return outputs


def _check_tile(tile: np.ndarray, plane: tuple[int, int, int], y0: int, x0: int) -> None:
    """Refuse NaN / Inf and values beyond float32 in a tile read from a lazy input."""
    finite = np.isfinite(tile)
    t, c, z = plane
    if not finite.all():
        bad = tile.size - int(np.count_nonzero(finite))
        y, x = np.unravel_index(int(np.argmin(finite)), tile.shape)
        raise InputError(
            f"plane t={t}, c={c}, z={z} has non-finite pixels, NaN or Inf ({bad} in the tile at "
            f"y={y0}, x={x0}, the first at y={y0 + y}, x={x0 + x}); replace them first, "
            "e.g. with numpy.nan_to_num"
        )
    largest = float(np.abs(tile).max())
    if largest > FLOAT32_MAX:
        raise InputError(
            f"plane t={t}, c={c}, z={z} has pixel values up to {largest:.3g}, beyond the "
            "float32 output; rescale the image first"
        )


def _constant_group(run: RunSpec, group: _Group, tiles: list, value: float) -> list:
    """Outputs of a group of constant tiles, with the progress its forward passes would give."""
    widths: dict[int, int] = {}
    outputs = []
    wy = blend_weights(run.ys, group.row, run.scale)
    for j, tile in zip(group.cols, tiles, strict=True):
        widths[tile.shape[1]] = widths.get(tile.shape[1], 0) + 1
        weight = wy[:, None] * blend_weights(run.xs, j, run.scale)[None, :]
        parts = [np.float64(value) * weight]
        if run.samples > 1:
            parts.append(np.zeros_like(weight))
        outputs.append(np.stack(parts).astype(np.float32))
    for n in widths.values():
        for _ in range(-(-n * run.samples // run.batch_size)):
            run.progress.tick()
    return outputs


@dataclass(frozen=True)
class _Combine:
    """Static description of one output task: which tiles (and where) cover the core."""

    row: int
    col: int
    sources: tuple[tuple[int, int, int], ...]  # (tile row, tile col, index in its group)


def _combine(run: RunSpec, spec: _Combine, results: list) -> np.ndarray:
    """Sum the weighted tile outputs that overlap core ``(row, col)`` (partition of unity)."""
    s = run.scale
    cy0, cy1 = (v * s for v in run.ys.cores[spec.row])
    cx0, cx1 = (v * s for v in run.xs.cores[spec.col])
    k = 2 if run.samples > 1 else 1
    out = np.zeros((k, cy1 - cy0, cx1 - cx0), dtype=np.float32)
    for (i, j, n), group_out in zip(spec.sources, results, strict=True):
        tile = group_out[n]
        ty0, tx0 = run.ys.tiles[i][0] * s, run.xs.tiles[j][0] * s
        ya, yb = max(cy0, ty0), min(cy1, ty0 + tile.shape[-2])
        xa, xb = max(cx0, tx0), min(cx1, tx0 + tile.shape[-1])
        if ya < yb and xa < xb:
            out[:, ya - cy0 : yb - cy0, xa - cx0 : xb - cx0] += tile[
                :, ya - ty0 : yb - ty0, xa - tx0 : xb - tx0
            ]
    return out[:, None, None, None]


def restore_graph(
    stack: Any,
    model_spec: Any,
    run: RunSpec,
    *,
    group: int,
    offset: tuple[int, int, int] = (0, 0, 0),
) -> Any:
    """The lazy restoration of a 5D TCZYX dask ``stack``: a ``(K, T, C, Z, H*s, W*s)`` dask array.

    ``K`` is 1 (mean) or 2 (mean, std). ``model_spec`` is the model (local runs)
    or a :class:`ModelSpec` (distributed runs). ``offset`` is the ``(t, c, z)``
    of ``stack[0, 0, 0]`` in the full stack (noise keys and per-channel
    percentiles use full-stack indices), so a stack can be restored in slabs.
    """
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    ys, xs, s = run.ys, run.xs, run.scale
    src = stack.rechunk((1, 1, 1, ys.chunks, xs.chunks))
    tag = f"{run.token}-{offset[0]}-{offset[1]}-{offset[2]}"
    name = f"mscgm-restore-{tag}"
    gname = f"mscgm-tiles-{tag}"
    mkey = f"mscgm-model-{run.token}"
    layer: dict = {mkey: model_spec}
    t_n, c_n, z_n = stack.shape[:3]
    ny, nx = len(ys.cores), len(xs.cores)
    where: dict[tuple[int, int], tuple[int, int]] = {}  # tile -> (group index, position)
    groups_per_row = []
    for i in range(ny):
        gs = [tuple(range(g0, min(g0 + group, nx))) for g0 in range(0, nx, group)]
        groups_per_row.append(gs)
        for g, cols in enumerate(gs):
            for n, j in enumerate(cols):
                where[(i, j)] = (g, n)
    for t in range(t_n):
        for c in range(c_n):
            for z in range(z_n):
                for i in range(ny):
                    r0, r1 = max(0, i - 1), min(ny, i + 2)
                    for g, cols in enumerate(groups_per_row[i]):
                        q0, q1 = max(0, cols[0] - 1), min(nx, cols[-1] + 2)
                        blocks = [
                            [(src.name, t, c, z, r, q) for q in range(q0, q1)]
                            for r in range(r0, r1)
                        ]
                        plane = (t + offset[0], c + offset[1], z + offset[2])
                        spec = _Group(plane, i, cols, r0, r1, q0, q1)
                        layer[(gname, t, c, z, i, g)] = (_restore_group, mkey, run, spec, blocks)
                for i in range(ny):
                    for j in range(nx):
                        sources, keys = [], []
                        for a in range(max(0, i - 1), min(ny, i + 2)):
                            for b in range(max(0, j - 1), min(nx, j + 2)):
                                g, n = where[(a, b)]
                                sources.append((a, b, n))
                                keys.append((gname, t, c, z, a, g))
                        layer[(name, 0, t, c, z, i, j)] = (
                            _combine,
                            run,
                            _Combine(i, j, tuple(sources)),
                            keys,
                        )
    k = 2 if run.samples > 1 else 1
    chunks = ((k,), (1,) * t_n, (1,) * c_n, (1,) * z_n)
    chunks += (tuple(v * s for v in ys.chunks), tuple(v * s for v in xs.chunks))
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[src])
    return da.Array(graph, name, chunks=chunks, dtype=np.float32)
