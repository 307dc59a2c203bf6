"""The restoration as one dask graph: tile groups, then one blended output chunk per core.

For each plane ``(t, c, z)``: input blocks = cores; one *group* task per run of up to
``group`` tiles in a tile row (they share forward passes); one *output* task per
core, which adds the weighted parts of the (up to 3 × 3) tiles overlapping it. Each
tile is computed once, each output chunk written once, and the graph is the same for
the local scheduler and a dask.distributed cluster.

Per tile: the input's pixels are checked, normalised, resampled onto the target grid
and restored (:func:`~napari_mscgm.restoration.batching.restore_batches`); the samples are
denormalised, reduced to mean (and std) and weighted for blending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.calibration import calibrated_std
from .batching import constant_ticks, restore_batches
from .checks import FLOAT32_MAX, NORMALISED_LIMIT, check_tile
from .distributed import resolve_model
from .layout import blend_weights
from .spec import RunSpec

__all__ = ["restore_graph"]


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


def _gather_tiles(run: RunSpec, group: _Group, blocks: list) -> list[np.ndarray]:
    """The float64 input tiles of a group, cut from its neighbourhood of input blocks."""
    plane_in = np.block(blocks)
    plane_in = plane_in.reshape(plane_in.shape[-2:])
    oy = run.ys.cores[group.r0][0]
    ox = run.xs.cores[group.q0][0]
    y0, y1 = run.ys.tiles[group.row]
    tiles = []
    for j in group.cols:
        x0, x1 = run.xs.tiles[j]
        tile = np.asarray(plane_in[y0 - oy : y1 - oy, x0 - ox : x1 - ox], dtype=np.float64)
        check_tile(tile, group.plane, y0, x0)
        tiles.append(tile)
    return tiles


def _restore_group(spec: Any, run: RunSpec, group: _Group, blocks: list) -> list:
    """Restore the tiles of one group; returns ``(K, h, w)`` weighted outputs per tile."""
    tiles = _gather_tiles(run, group, blocks)
    c = group.plane[1]
    norm = run.normalizer
    if norm.is_constant(c) and all((tile == norm.limits(c)[0]).all() for tile in tiles):
        # A constant channel has nothing to restore: it comes back as itself.
        return _constant_group(run, group, tiles, norm.limits(c)[0])
    model = resolve_model(spec, run.device, run.options.threads)
    device = next(model.parameters()).device
    y0 = run.ys.tiles[group.row][0]
    items, upsampled = [], []
    for j, tile in zip(group.cols, tiles, strict=True):
        x0 = run.xs.tiles[j][0]
        # Clipped so that an absurd outlier cannot overflow float32 inside the networks.
        normalized = np.clip(norm.normalize(tile, c), -NORMALISED_LIMIT, NORMALISED_LIMIT)
        tensor = torch.from_numpy(normalized.astype(np.float32))[None, None].to(device)
        degraded = model.upsample(tensor)
        upsampled.append(degraded)
        for s in range(run.samples):
            items.append((degraded, s, y0 * run.scale, x0 * run.scale))
    restored = restore_batches(model, run, items, group.plane)
    wy = blend_weights(run.ys, group.row, run.scale)
    outputs = []
    for n, j in enumerate(group.cols):
        samples = np.stack(restored[n * run.samples : (n + 1) * run.samples]).astype(np.float64)
        stack = norm.denormalize(samples, c)
        weight = wy[:, None] * blend_weights(run.xs, j, run.scale)[None, :]
        parts = [stack.mean(axis=0)]
        if run.samples > 1 and run.calibration is not None:
            spread = samples.std(axis=0, ddof=1)
            start = upsampled[n][0, 0].float().cpu().numpy().astype(np.float64)
            calibrated = calibrated_std(samples.mean(axis=0), spread, start, run.calibration)
            parts.append(calibrated * norm.span(c))  # a std: scaled, not shifted
        elif run.samples > 1:
            parts.append(stack.std(axis=0, ddof=1))
        weighted = np.clip(np.stack(parts) * weight, -FLOAT32_MAX, FLOAT32_MAX)
        outputs.append(weighted.astype(np.float32))
    return outputs


def _constant_group(run: RunSpec, group: _Group, tiles: list, value: float) -> list:
    """Outputs of a group of constant tiles, with the progress its forward passes would give."""
    outputs = []
    wy = blend_weights(run.ys, group.row, run.scale)
    for j in group.cols:
        weight = wy[:, None] * blend_weights(run.xs, j, run.scale)[None, :]
        parts = [np.float64(value) * weight]
        if run.samples > 1:
            parts.append(np.zeros_like(weight))
        outputs.append(np.stack(parts).astype(np.float32))
    constant_ticks(run, [tile.shape[1] for tile in tiles])
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


def _tile_groups(ny: int, nx: int, group: int) -> tuple[list, dict]:
    """Groups of up to ``group`` tiles per tile row, and where each tile sits in them."""
    where: dict[tuple[int, int], tuple[int, int]] = {}  # tile -> (group index, position)
    groups_per_row = []
    for i in range(ny):
        gs = [tuple(range(g0, min(g0 + group, nx))) for g0 in range(0, nx, group)]
        groups_per_row.append(gs)
        for g, cols in enumerate(gs):
            for n, j in enumerate(cols):
                where[(i, j)] = (g, n)
    return groups_per_row, where


def _plane_tasks(
    layer: dict,
    names: tuple[str, str, str, str],
    run: RunSpec,
    index: tuple,
    plane: tuple,
    group: int,
) -> None:
    """Add one plane's group tasks and output tasks to ``layer``."""
    src, gname, name, mkey = names
    t, c, z = index
    ny, nx = len(run.ys.cores), len(run.xs.cores)
    groups_per_row, where = _tile_groups(ny, nx, group)
    for i in range(ny):
        r0, r1 = max(0, i - 1), min(ny, i + 2)
        for g, cols in enumerate(groups_per_row[i]):
            q0, q1 = max(0, cols[0] - 1), min(nx, cols[-1] + 2)
            blocks = [[(src, t, c, z, r, q) for q in range(q0, q1)] for r in range(r0, r1)]
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
            layer[(name, 0, t, c, z, i, j)] = (_combine, run, _Combine(i, j, tuple(sources)), keys)


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
    or a :class:`~napari_mscgm.restoration.distributed.ModelSpec` (distributed runs).
    ``offset`` is the ``(t, c, z)`` of ``stack[0, 0, 0]`` in the full stack (noise keys
    and per-channel percentiles use full-stack indices), so a stack can be restored
    in slabs.
    """
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    ys, xs, s = run.ys, run.xs, run.scale
    src = stack.rechunk((1, 1, 1, ys.chunks, xs.chunks))
    tag = f"{run.token}-{offset[0]}-{offset[1]}-{offset[2]}"
    name = f"mscgm-restore-{tag}"
    names = (src.name, f"mscgm-tiles-{tag}", name, f"mscgm-model-{run.token}")
    layer: dict = {names[3]: model_spec}
    t_n, c_n, z_n = stack.shape[:3]
    for t in range(t_n):
        for c in range(c_n):
            for z in range(z_n):
                plane = (t + offset[0], c + offset[1], z + offset[2])
                _plane_tasks(layer, names, run, (t, c, z), plane, group)
    k = 2 if run.samples > 1 else 1
    chunks = ((k,), (1,) * t_n, (1,) * c_n, (1,) * z_n)
    chunks += (tuple(v * s for v in ys.chunks), tuple(v * s for v in xs.chunks))
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[src])
    return da.Array(graph, name, chunks=chunks, dtype=np.float32)
