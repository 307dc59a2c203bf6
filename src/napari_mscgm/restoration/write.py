"""Streaming a restoration into OME-Zarr or OME-TIFF, slab by slab, atomically.

The stack is restored in slabs of whole planes (a bounded graph each); within a slab
the scheduler writes each output chunk as soon as its tiles are done. OME-Zarr goes
to the temporary of :func:`~napari_mscgm.io.atomic.atomic_path`; OME-TIFF is filled
from a scratch OME-Zarr beside it, then written band by band.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..config import RunMetadata
from ..errors import OutputError
from ..io.atomic import atomic_path, scratch_path, write_error
from ..io.ome_tiff import write_ome_tiff_from_zarr
from ..io.ome_zarr import ChunkWriter, create_ome_zarr
from ..io.read import RUN_METADATA_KEY
from .axes import CANONICAL
from .consistency import ConsistencyCheck, check_stack
from .graph import restore_graph
from .spec import MeanStd, RunSpec

__all__ = [
    "MAX_TILES_PER_GRAPH",
    "Destination",
    "consistency_map_path",
    "output_kind",
    "std_path",
    "write_result",
]

#: Tiles per graph when streaming to ``out=``: the stack is cut into slabs of whole
#: planes holding at most this many tiles (at least one plane), so the graph, and the
#: scheduler's memory for it (a few MB per 100 tiles), does not grow with the stack.
#: 1024 tiles keep a cluster of dozens of workers busy.
MAX_TILES_PER_GRAPH = 1024


def consistency_map_path(path: str | os.PathLike) -> Path:
    """Where the consistency map of ``path`` goes: ``x.ome.tif`` → ``x_consistency.ome.tif``."""
    return sibling_path(path, "_consistency")


def std_path(path: str | os.PathLike) -> Path:
    """Where the std (uncertainty map) of ``path`` goes: ``x.ome.tif`` → ``x_std.ome.tif``."""
    return sibling_path(path, "_std")


def sibling_path(path: str | os.PathLike, suffix: str) -> Path:
    """``path`` with ``suffix`` before its image extension (``x.ome.tif`` → ``x<suffix>.ome.tif``)."""
    path = Path(path)
    name = path.name
    for ext in (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr"):
        if name.lower().endswith(ext):
            return path.with_name(name[: -len(ext)] + suffix + name[-len(ext) :])
    return path.with_name(path.stem + suffix + path.suffix)


def output_kind(out: Path) -> str:
    """``"zarr"`` or ``"tiff"``, from the output's name."""
    name = out.name.lower()
    if name.endswith(".zarr"):
        return "zarr"
    if name.endswith((".tif", ".tiff")):
        return "tiff"
    raise OutputError(f"{out}: output must end in .zarr (OME-Zarr) or .ome.tif / .tif")


def _slabs(shape: tuple[int, ...], planes: int) -> list[tuple[int, int, int, int]]:
    """``(t, c, z0, z1)`` slabs of at most ``planes`` Z planes covering a TCZYX stack."""
    t_n, c_n, z_n = shape[:3]
    return [
        (t, c, z0, min(z_n, z0 + planes))
        for t in range(t_n)
        for c in range(c_n)
        for z0 in range(0, z_n, planes)
    ]


@dataclass(frozen=True)
class Destination:
    """Where and how a result is written: the files, their axes, sizes and metadata."""

    out: Path
    axes: str  # the input's axes
    pixel_size_um: tuple[float | None, float | None, float | None]
    metadata: RunMetadata
    channel_names: list[str] | None = None
    check: ConsistencyCheck | None = None
    consistency_map: bool = False

    @property
    def map_path(self) -> Path | None:
        """Where the consistency map goes (on the input grid), when one is asked for."""
        return consistency_map_path(self.out) if self.check and self.consistency_map else None

    @property
    def targets(self) -> list[Path]:
        return [self.out] if self.metadata.samples == 1 else [self.out, std_path(self.out)]

    @property
    def present(self) -> str:
        """The axes written: the input's, in TCZYX order (NGFF's rule)."""
        return "".join(a for a in CANONICAL if a in self.axes)

    def output_pixel_size(self, scale: int) -> tuple[float | None, float | None, float | None]:
        z, y, x = self.pixel_size_um
        return (z, None if y is None else y / scale, None if x is None else x / scale)

    def metadata_of(self, k: int) -> dict:
        return (self.metadata if k == 0 else self.metadata.for_std()).to_dict()


def _layout(dest: Destination, stack: Any, run: RunSpec) -> tuple[tuple, tuple]:
    """Shape and dask chunks of the written arrays."""
    t_n, c_n, z_n, height, width = stack.shape
    s = run.scale
    full = {"T": t_n, "C": c_n, "Z": z_n, "Y": height * s, "X": width * s}
    # One block per plane along T, C and Z: the Zarr chunks are then one plane deep, so
    # no chunk is shared by two blocks (no read-modify-write of a deep chunk per plane).
    one = {a: (1,) * full[a] for a in "TCZ"}
    chunks = tuple(
        one[a] if a in one else tuple(v * s for v in (run.ys if a == "Y" else run.xs).chunks)
        for a in dest.present
    )
    return tuple(full[a] for a in dest.present), chunks


def _create_stores(dest: Destination, stores_at: list[Path], stack: Any, run: RunSpec) -> list:
    shape, chunks = _layout(dest, stack, run)
    stores = []
    for k, (target, tmp) in enumerate(zip(dest.targets, stores_at, strict=True)):
        try:
            array = create_ome_zarr(
                tmp,
                shape=shape,
                chunks=chunks,
                axes=dest.present,
                pixel_size_um=dest.output_pixel_size(run.scale),
                metadata=dest.metadata_of(k),
                channel_names=dest.channel_names,
            )
        except OutputError as exc:  # name the output asked for, not the scratch store
            if isinstance(exc.__cause__, OSError):
                raise write_error(target, exc.__cause__) from None
            raise
        stores.append(ChunkWriter(array, target))
    return stores


def _fill(
    dest: Destination, stores: list, stack: Any, spec: Any, run: RunSpec, *, group: int, client: Any
) -> None:
    import dask
    import dask.array as da

    k_n = len(stores)
    per_plane = len(run.ys.cores) * len(run.xs.cores)
    planes = max(1, MAX_TILES_PER_GRAPH // per_plane)
    present = dest.present
    index = tuple(slice(None) if a in present else 0 for a in CANONICAL)
    for t, c, z0, z1 in _slabs(stack.shape, planes):
        slab = restore_graph(
            stack[t : t + 1, c : c + 1, z0:z1], spec, run, group=group, offset=(t, c, z0)
        )
        where = {"T": slice(t, t + 1), "C": slice(c, c + 1), "Z": slice(z0, z1)}
        region = tuple(where.get(a, slice(None)) for a in present)
        # One store call, so mean and std share each tile's computation.
        stored = da.store(
            [slab[k][index] for k in range(k_n)],
            stores,
            regions=[region] * k_n,
            lock=False,
            compute=False,
        )
        dask.compute(stored, scheduler=client if client is not None else "sync")


def _store_at(files: contextlib.ExitStack, target: Path, kind: str) -> Path:
    """Zarr: the atomic temporary of the result itself; TIFF: a scratch store beside it."""
    if kind == "zarr":  # renamed onto the target when the block ends
        return files.enter_context(atomic_path(target))
    return files.enter_context(scratch_path(target.with_name(target.name + ".zarr")))


def _check(dest: Destination, stores: list, stack: Any, files: contextlib.ExitStack) -> Any:
    """Run the consistency check on the written result; write its map if asked for.

    Returns the record, and the map's Zarr array and store (None without a map).
    """
    present = dest.present
    index_of = {a: i for i, a in enumerate("TCZ")}
    mean = stores[0].array

    def restored(index: tuple[int, int, int]) -> Any:
        return mean[tuple(index[index_of[a]] for a in present if a in index_of)]

    map_array, tmp = None, None
    if dest.map_path is not None:
        full = dict(zip("TCZYX", stack.shape, strict=True))
        tmp = _store_at(files, dest.map_path, output_kind(dest.out))
        map_array = create_ome_zarr(
            tmp,
            shape=tuple(full[a] for a in present),
            chunks=tuple(1 if a in "TCZ" else full[a] for a in present),
            axes=present,
            pixel_size_um=dest.pixel_size_um,
            metadata=dest.metadata.for_consistency_map().to_dict(),
        )

    def on_map(index: tuple[int, int, int], z: Any) -> None:
        map_array[tuple(index[index_of[a]] for a in present if a in index_of)] = z

    record = check_stack(
        dest.check, stack, restored, on_map=on_map if map_array is not None else None
    )
    return record, map_array, (tmp if map_array is not None else None)


def write_result(
    dest: Destination, stack: Any, spec: Any, run: RunSpec, *, group: int, client: Any = None
) -> tuple[Path | MeanStd, RunMetadata]:
    """Restore ``stack`` into ``dest`` (its std file and consistency map); the path(s) and record."""
    kind = output_kind(dest.out)
    with contextlib.ExitStack() as files:
        stores_at = [_store_at(files, t, kind) for t in dest.targets]
        stores = _create_stores(dest, stores_at, stack, run)
        _fill(dest, stores, stack, spec, run, group=group, client=client)
        map_array = map_store = None
        if dest.check is not None:
            record, map_array, map_store = _check(dest, stores, stack, files)
            dest = replace(dest, metadata=dest.metadata.with_consistency(record))
            for k, store in enumerate(stores_at):  # the record as it ended
                _update_attributes(store, dest.metadata_of(k))
        if kind == "tiff":
            for k, target in enumerate(dest.targets):
                write_ome_tiff_from_zarr(
                    target, stores[k].array, axes=dest.present,
                    pixel_size_um=dest.output_pixel_size(run.scale),
                    metadata=dest.metadata_of(k), channel_names=dest.channel_names,
                )  # fmt: skip
            if map_array is not None:
                meta = dest.metadata.for_consistency_map().to_dict()
                write_ome_tiff_from_zarr(
                    dest.map_path, map_array, axes=dest.present,
                    pixel_size_um=dest.pixel_size_um, metadata=meta,
                )  # fmt: skip
        elif map_store is not None:
            _update_attributes(map_store, dest.metadata.for_consistency_map().to_dict())
    targets = dest.targets
    result = targets[0] if len(targets) == 1 else MeanStd(targets[0], targets[1])
    return result, dest.metadata


def _update_attributes(store: Path, metadata: dict) -> None:
    """Replace the run record in the attributes of the OME-Zarr group at ``store``."""
    import zarr

    zarr.open_group(str(store), mode="a").attrs[RUN_METADATA_KEY] = metadata
