"""Lazy inputs stay lazy; results stream into OME-Zarr / tiled OME-TIFF with metadata."""

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr

from napari_mscgm import MeanStd, restore
from napari_mscgm.io import read_image, read_run_metadata, write_ome_tiff_from_zarr

KW = {"steps": 2, "seed": 3, "tile_size": 32, "overlap": 8}


@pytest.fixture
def stack(rng):
    return (rng.random((2, 40, 56)) * 3000 + 100).astype(np.uint16)


@pytest.fixture
def zarr_input(tmp_path, stack):
    array = zarr.open_array(
        str(tmp_path / "in.zarr"), mode="w", shape=stack.shape, chunks=(1, 32, 32), dtype="u2"
    )
    array[...] = stack
    return array


class CountingArray:
    """A zarr-like array that counts the pixels read from it."""

    def __init__(self, data):
        self.data, self.read = data, 0
        self.shape, self.dtype, self.ndim, self.chunks = (
            data.shape,
            data.dtype,
            data.ndim,
            (1, 20, 28),
        )

    def __getitem__(self, index):
        out = self.data[index]
        self.read += out.size
        return out


def test_lazy_input_gives_lazy_output(tiny_model, stack):
    source = CountingArray(stack)
    lazy = restore(source, tiny_model, axes="ZYX", **KW)
    assert isinstance(lazy, da.Array) and lazy.shape == (2, 80, 112)
    # Only the percentile subsample was read (here: all of it, as the stack is tiny),
    # no restoration ran; computing one plane reads about one plane.
    before = source.read
    assert before <= stack.size
    plane = lazy[1].compute()
    assert source.read - before < 1.6 * stack[1].size
    np.testing.assert_array_equal(plane, restore(stack, tiny_model, axes="ZYX", **KW)[1])


def test_zarr_in_ome_zarr_out_round_trip(tmp_path, tiny_model, zarr_input, stack):
    out = tmp_path / "result.ome.zarr"
    path, meta = restore(
        zarr_input,
        tiny_model,
        axes="ZYX",
        out=out,
        pixel_size_um=(0.5, 0.65, 0.65),
        return_metadata=True,
        **KW,
    )
    assert path == out and out.is_dir()
    assert not list(tmp_path.glob(".*part"))
    # Read back through bioio (lazily), with the physical sizes divided by the scale.
    image = read_image(out)
    assert image.data.shape == (1, 1, 2, 80, 112)
    assert image.pixel_size_um == pytest.approx((0.5, 0.325, 0.325))
    expected = restore(stack, tiny_model, axes="ZYX", **KW)
    np.testing.assert_array_equal(np.asarray(image.data[0, 0]), expected)
    # NGFF attributes and the run metadata.
    attrs = zarr.open_group(str(out), mode="r").attrs
    ms = attrs["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == pytest.approx(
        [0.5, 0.325, 0.325]
    )
    stored = read_run_metadata(out)
    assert stored == attrs["napari-mscgm"]
    for key in ("version", "model", "model_sha256", "steps", "seed", "eta", "samples", "device"):
        assert stored[key] == meta[key]
    assert stored["tile_size"] == 32 and stored["overlap"] == 8
    assert stored["normalization"]["values"] and stored["input_shape"] == [2, 40, 56]


def test_samples_stream_mean_and_std(tmp_path, tiny_model, zarr_input):
    out = tmp_path / "r.zarr"
    paths = restore(zarr_input, tiny_model, axes="ZYX", samples=2, out=out, **KW)
    assert isinstance(paths, MeanStd) and paths.std == tmp_path / "r_std.zarr"
    assert read_run_metadata(paths.std)["content"] == "std"
    assert np.asarray(zarr.open_group(str(paths.std), mode="r")["0"]).min() >= 0


def test_tiled_ome_tiff_streaming(tmp_path, tiny_model, zarr_input, stack, monkeypatch):
    from napari_mscgm.io import ome_tiff

    # Force the band-by-band path on a small image (normally above 64 MiB).
    monkeypatch.setattr(ome_tiff, "TIFF_STREAM_BYTES", 0)
    out = tmp_path / "r.ome.tif"
    restore(zarr_input, tiny_model, axes="ZYX", out=out, pixel_size_um=(0.5, 0.65, 0.65), **KW)
    with tifffile.TiffFile(out) as tif:
        assert tif.pages[0].is_tiled and tif.is_bigtiff
        data = tif.asarray()
    np.testing.assert_array_equal(data, restore(stack, tiny_model, axes="ZYX", **KW))
    image = read_image(out)
    assert image.pixel_size_um == pytest.approx((0.5, 0.325, 0.325))
    assert read_run_metadata(out)["tile_size"] == 32
    assert not list(tmp_path.glob(".*part"))
    # The writer alone, with edge tiles that need padding.
    source = np.arange(3 * 40 * 50, dtype=np.float32).reshape(3, 40, 50)
    write_ome_tiff_from_zarr(tmp_path / "w.tif", source, axes="ZYX", tile=16)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "w.tif"), source)


def test_interrupted_write_leaves_nothing(tmp_path, tiny_model, zarr_input):
    out = tmp_path / "r.zarr"

    def stop(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        restore(zarr_input, tiny_model, axes="ZYX", out=out, progress=stop, batch_size=1, **KW)
    assert list(tmp_path.iterdir()) == [tmp_path / "in.zarr"]


def test_slabs_of_planes_give_the_same_result(tmp_path, tiny_model, zarr_input, stack, monkeypatch):
    # Big stacks are written in slabs of planes (bounded graphs); a slab per plane changes nothing.
    from napari_mscgm.restoration import write

    calls = []
    real = write.restore_graph

    def counting(*args, **kwargs):
        calls.append(kwargs.get("offset"))
        return real(*args, **kwargs)

    monkeypatch.setattr(write, "restore_graph", counting)
    monkeypatch.setattr(write, "MAX_TILES_PER_GRAPH", 1)
    out = restore(zarr_input, tiny_model, axes="ZYX", out=tmp_path / "s.zarr", **KW)
    assert calls == [(0, 0, 0), (0, 0, 1)]  # one graph per plane
    monkeypatch.setattr(write, "restore_graph", real)
    expected = restore(stack, tiny_model, axes="ZYX", **KW)
    np.testing.assert_array_equal(np.asarray(zarr.open_group(str(out), mode="r")["0"]), expected)


def test_zarr_chunks_are_one_plane_deep(tmp_path, tiny_model, zarr_input):
    # A chunk spanning several planes would be rewritten once per plane (slow, memory
    # growing with the stack) and shared by parallel writers.
    out = restore(zarr_input, tiny_model, axes="ZYX", out=tmp_path / "c.zarr", **KW)
    chunks = zarr.open_group(str(out), mode="r")["0"].chunks
    assert chunks[0] == 1 and chunks[1:] == (48, 48)  # one core of 24 input px × scale 2
