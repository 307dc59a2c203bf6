"""Reliability of the library: every input is processed correctly or refused with a
typed one-line error; weights problems name the file; outputs appear atomically;
memory is checked before an untiled CPU run; inputs are never modified."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile
import torch
import zarr
from conftest import tiny_config
from safetensors.torch import load_file, save_file

from napari_mscgm import (
    MSCGM,
    InputError,
    MeanStd,
    MSCGMError,
    OutputError,
    ResourceError,
    WeightsError,
    load_model,
    restore,
    save_model,
)
from napari_mscgm.core.normalize import PercentileNormalizer
from napari_mscgm.device import available_memory
from napari_mscgm.io import read_image, read_run_metadata, temporary_path, write_ome_tiff
from napari_mscgm.model_io import bundled
from napari_mscgm.model_io.weights import DATA_SHA_KEY
from napari_mscgm.restoration import memory
from napari_mscgm.restoration.batching import TileOOMError

FAST = {"steps": 1, "seed": 0}


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only copy: any attempt to write into the input raises."""
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text, text
    return text


# ================================================================ the input matrix
@pytest.mark.parametrize(
    "dtype", ["bool", "uint8", "uint16", "int16", "int32", "float16", "float32", "float64"]
)
def test_every_real_dtype_is_processed_in_input_units(tiny_model, rng, dtype):
    values = rng.random((24, 20))
    if dtype == "bool":
        image = values > 0.5
    elif dtype == "int16":
        image = (values * 2000 - 1000).astype(dtype)  # negative values too
    elif np.dtype(dtype).kind in "ui":
        image = (values * np.iinfo(dtype).max * 0.5).astype(dtype)
    else:
        image = (values * 100).astype(dtype)
    before = image.copy()
    out = restore(_frozen(image), tiny_model, **FAST)
    assert out.shape == (48, 40) and out.dtype == np.float32 and np.isfinite(out).all()
    # Input units: the output's bulk lies within the input's range (widened by the
    # untrained model's response), not in a normalised [0, 1].
    low, high = float(image.min()), float(image.max())
    span = high - low
    assert low - span < np.median(out) < high + span
    assert np.percentile(out, 99) > low + 0.3 * span
    assert _same(image, before)


def test_complex_is_refused(tiny_model):
    image = np.ones((8, 8), np.complex64)
    with pytest.raises(InputError, match=r"complex .* pass the magnitude") as info:
        restore(_frozen(image), tiny_model, **FAST)
    _one_line(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_pixels_are_counted_and_refused(tiny_model, rng, bad):
    image = rng.random((3, 16, 16)).astype(np.float32)
    image[1, 2, 3] = bad
    image[2, 0, 0] = bad
    before = image.copy()
    with pytest.raises(InputError, match="2 non-finite pixel") as info:
        restore(image, tiny_model, axes="ZYX", **FAST)
    message = _one_line(info.value)
    assert "Z=1, Y=2, X=3" in message and "nan_to_num" in message
    assert _same(image, before)


def test_nan_in_a_lazy_input_is_refused_when_read(tiny_model, rng):
    image = rng.random((32, 32)).astype(np.float32)
    image[20, 5] = np.nan
    lazy = restore(da.from_array(image, chunks=16), tiny_model, tile_size=16, overlap=0, **FAST)
    with pytest.raises(InputError, match=r"non-finite .* first at y=20, x=5.*nan_to_num"):
        lazy.compute()


def test_values_beyond_float32_are_refused(tiny_model):
    image = np.ones((8, 8))
    image[0, 0] = 1e300
    with pytest.raises(InputError, match="do not fit the float32 output"):
        restore(image, tiny_model, **FAST)


def test_wild_outlier_gives_a_finite_result(tiny_model, rng):
    # Normalised input is clipped, so one pixel 10^30 times the range cannot overflow.
    image = rng.random((16, 16)).astype(np.float32)
    image[4, 4] = 1e30
    out = restore(image, tiny_model, **FAST)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("value", [0.0, 7.0, -3.5, 65535])
def test_constant_images_come_back_constant(tiny_model, value):
    image = np.full((20, 12), value, dtype=np.float64 if value != 65535 else np.uint16)
    out = restore(_frozen(image), tiny_model, **FAST)
    assert out.shape == (40, 24) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.float32(value))
    result = restore(image, tiny_model, samples=2, steps=1)
    np.testing.assert_array_equal(result.mean, np.float32(value))
    np.testing.assert_array_equal(result.std, 0)


def test_constant_image_reports_progress_to_the_end(tiny_model):
    calls = []
    restore(
        np.zeros((64, 64)),
        tiny_model,
        tile_size=16,
        overlap=0,
        progress=lambda d, t: calls.append((d, t)),
        **FAST,
    )
    assert calls and calls[-1][0] == calls[-1][1]


def test_mostly_flat_channel_is_normalised_by_its_range():
    # 2 bright pixels in 4096: the 1st and 99.8th percentiles are both 0.
    image = np.zeros((1, 1, 1, 64, 64))
    image[0, 0, 0, 10, 10] = image[0, 0, 0, 40, 50] = 1000.0
    norm = PercentileNormalizer(1, 99.8)
    np.testing.assert_array_equal(norm.fit_stack(image).values, [[0, 1000]])
    np.testing.assert_array_equal(norm.fit_stack(image * 0 + 5).values, [[5, 5]])


@pytest.mark.parametrize(
    "shape,kwargs",
    [
        ((1, 1), {}),
        ((7, 5), {}),
        ((13, 17), {}),
        ((31, 37), {"tile_size": 16, "overlap": 4}),
        ((1, 1000), {}),
        ((1, 1000), {"tile_size": 64, "overlap": 8}),
        ((1000, 2), {"tile_size": 64, "overlap": 16}),
        ((3, 1, 997), {"axes": "ZYX", "tile_size": 128, "overlap": 32}),
    ],
)
def test_tiny_prime_and_extreme_aspect_sizes(tiny_model, rng, shape, kwargs):
    image = rng.random(shape).astype(np.float32)
    out = restore(_frozen(image), tiny_model, **FAST, **kwargs)
    expected = (*shape[:-2], shape[-2] * 2, shape[-1] * 2)
    assert out.shape == expected and out.dtype == np.float32 and np.isfinite(out).all()


@pytest.mark.parametrize("channels", [3, 4])
def test_inferred_rgb_is_refused_and_explicit_yxc_restores_each_colour(tiny_model, rng, channels):
    image = rng.random((24, 20, channels)).astype(np.float32)
    with pytest.raises(InputError, match=r"like RGB.* axes='YXC'") as info:
        restore(_frozen(image), tiny_model, **FAST)
    _one_line(info.value)
    out = restore(_frozen(image), tiny_model, axes="YXC", **FAST)
    assert out.shape == (48, 40, channels)
    # Each colour on its own: channel 0 equals restoring the red plane alone.
    np.testing.assert_array_equal(out[..., 0], restore(image[..., 0], tiny_model, **FAST))


def test_small_last_dimension_alone_is_not_taken_for_rgb(tiny_model, rng):
    # A 3-plane stack of small images is a stack, not colour: nothing is much larger than 3.
    out = restore(rng.random((2, 5, 3)), tiny_model, **FAST)
    assert out.shape == (2, 10, 6)


@pytest.mark.parametrize(
    "image,kwargs,match",
    [
        (np.zeros((1, 1, 1, 1, 4, 4)), {}, "2D to 5D image, got 6"),
        (np.zeros(8), {}, "2D to 5D image, got 1"),
        (np.zeros((0, 8)), {}, "empty"),
        (np.zeros((2, 0, 8)), {}, "empty"),
        (np.zeros((8, 8)), {"axes": "ZYX"}, "3 letters but the image has 2"),
        (np.zeros((8, 8, 8)), {"axes": "YX"}, "2 letters but the image has 3"),
        (np.zeros((8, 8, 8)), {"axes": "YYX"}, "repeats a letter"),
        (np.zeros((8, 8)), {"axes": "YQ"}, "letters from"),
        (np.zeros((8, 8)), {"axes": "ZX"}, "must contain Y and X"),
        (np.zeros((8, 8, 8)), {"axes": "CZY"}, "must contain Y and X"),
        (np.zeros((8, 8)), {"axes": 2}, "axes must be a string"),
        (np.array([["a", "b"], ["c", "d"]]), {}, "unsupported pixel type"),
        (np.zeros((4, 4), dtype=object), {}, "unsupported pixel type"),
        (np.zeros((4, 4), dtype="datetime64[s]"), {}, "unsupported pixel type"),
        ([[1.0, 2.0], [3.0, 4.0]], {}, "expected an array, got list"),
        (None, {}, "expected an array, got NoneType"),
        (torch.zeros(8, 8), {}, "cannot read the pixel type of a Tensor"),
        (np.ma.masked_array(np.zeros((8, 8))), {}, "masked arrays"),
        (da.ones((4, 5))[da.ones(4) > 0], {}, "not fully known"),
        (np.zeros((8, 8)), {"steps": 0}, "steps must be at least 1"),
        (np.zeros((8, 8)), {"steps": 1.5}, "steps must be an integer"),
        (np.zeros((8, 8)), {"samples": 0}, "samples must be at least 1"),
        (np.zeros((8, 8)), {"samples": 2.5}, "samples must be an integer"),
        (np.zeros((8, 8)), {"batch_size": 0}, "batch_size must be at least 1"),
        (np.zeros((8, 8)), {"tile_size": 8}, "tile_size must be at least 16"),
        (np.zeros((8, 8)), {"tile_size": "64"}, "tile_size must be an integer"),
        (np.zeros((8, 8)), {"tile_size": 32, "overlap": 20}, "at most half"),
        (np.zeros((8, 8)), {"overlap": -1}, "overlap must be at least 0"),
        (np.zeros((8, 8)), {"seed": -1}, "seed must be at least 0"),
        (np.zeros((8, 8)), {"seed": 2**64}, r"seed must be an integer in \[0, 2\*\*64\)"),
        (np.zeros((8, 8)), {"seed": "1"}, "seed must be an integer"),
        (np.zeros((8, 8)), {"eta": float("nan")}, "eta must be a finite number"),
        (np.zeros((8, 8)), {"eta": -1}, "eta must be a finite number >= 0"),
        (np.zeros((8, 8)), {"precision": "float16"}, "precision must be"),
        (np.zeros((8, 8)), {"device": "tpu"}, "unknown device"),
        (np.zeros((8, 8)), {"pixel_size_um": (1.0, 2.0)}, r"pixel_size_um must be \(z, y, x\)"),
        (np.zeros((8, 8)), {"pixel_size_um": (1, -1, 1)}, "positive numbers"),
        (np.zeros((8, 8)), {"progress": 3}, "progress must be a callable"),
        (np.zeros((8, 8)), {"out": "result.png"}, "must end in .zarr"),
    ],
)
def test_bad_inputs_raise_one_typed_line_and_leave_the_input_alone(
    tiny_model, image, kwargs, match, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    before = np.array(image, copy=True) if isinstance(image, np.ndarray) else None
    if isinstance(image, np.ndarray) and not isinstance(image, np.ma.MaskedArray):
        image = _frozen(image)
    with pytest.raises(MSCGMError, match=match) as info:
        restore(image, tiny_model, **{**FAST, **kwargs})
    _one_line(info.value)
    if before is not None:
        np.testing.assert_array_equal(np.asarray(image), before)
    assert list(tmp_path.iterdir()) == []


def test_model_argument_of_the_wrong_type(rng):
    with pytest.raises(InputError, match="model must be an MSCGM"):
        restore(rng.random((8, 8)), 42)


def test_zarr_input_is_not_modified(tmp_path, tiny_model, rng):
    source = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=(2, 24, 24), dtype="f4")
    data = rng.random((2, 24, 24)).astype(np.float32)
    source[...] = data
    listing = sorted(p.relative_to(tmp_path) for p in (tmp_path / "in.zarr").rglob("*"))
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "in.zarr").rglob("*")}
    restore(source, tiny_model, axes="ZYX", out=tmp_path / "out.zarr", **FAST)
    np.testing.assert_array_equal(source[...], data)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "in.zarr").rglob("*")) == listing
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "in.zarr").rglob("*")} == mtimes


# ================================================================ input files
def _bytes_unchanged(path: Path, action) -> None:
    before = path.read_bytes()
    action()
    assert path.read_bytes() == before


def test_a_file_that_is_not_an_image(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("these are not pixels\n" * 20)
    with pytest.raises(InputError, match="cannot be read as an image") as info:
        _bytes_unchanged(path, lambda: read_image(path))
    assert str(path) in _one_line(info.value)


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.97])
@pytest.mark.parametrize("layout", ["contiguous", "pages", "ome", "tiled"])
def test_truncated_tiff_is_refused_naming_the_file(tmp_path, rng, layout, keep):
    data = (rng.random((4, 96, 96)) * 4000).astype(np.uint16)
    full = tmp_path / "full.tif"
    options = {
        "contiguous": {"photometric": "minisblack"},
        "pages": {"photometric": "minisblack", "contiguous": False},
        "ome": {"photometric": "minisblack", "ome": True},
        "tiled": {"photometric": "minisblack", "tile": (32, 32)},
    }[layout]
    tifffile.imwrite(full, data, **options)
    assert np.asarray(read_image(full).data).size == data.size  # intact: all planes
    cut = tmp_path / "cut.tif"
    blob = full.read_bytes()
    cut.write_bytes(blob[: int(len(blob) * keep)])
    with pytest.raises(InputError, match=r"cut\.tif") as info:
        _bytes_unchanged(cut, lambda: read_image(cut))
    assert "TIFF" in _one_line(info.value) or "cannot be read" in str(info.value)


def test_rgb_tiff_colours_become_channels(tmp_path, rng):
    # bioio reports RGB as samples (S); asking it for TCZYX alone would keep only red.
    rgb = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    path = tmp_path / "colour.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    image = read_image(path)
    assert image.data.shape == (1, 3, 1, 40, 48) and image.channel_names == ["R", "G", "B"]
    for c in range(3):
        np.testing.assert_array_equal(np.asarray(image.data[0, c, 0]), rgb[..., c])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_image(fifo)
    weights = tmp_path / "pipe.safetensors"
    os.mkfifo(weights)
    with pytest.raises(WeightsError, match="not a regular file"):
        load_model(weights)


# ================================================================ weights
def _header(path):
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        return fh.metadata()


def _weights_error(path, match) -> str:
    before = Path(path).read_bytes()
    with pytest.raises(WeightsError, match=match) as info:
        load_model(path, device="cpu")
    message = _one_line(info.value)
    assert str(path) in message
    assert Path(path).read_bytes() == before  # checking a file never changes it
    return message


@pytest.fixture
def weights(tmp_path, tiny_model) -> Path:
    return save_model(tiny_model, tmp_path / "m.safetensors")


def test_saved_weights_carry_a_data_checksum_and_load(weights, tiny_model):
    header = _header(weights)
    assert len(header[DATA_SHA_KEY]) == 64
    assert load_model(weights, device="cpu").config == tiny_model.config


@pytest.mark.parametrize("keep", [4, 12, 0.3, 0.99])
def test_truncated_weights_name_the_file(weights, keep):
    blob = weights.read_bytes()
    weights.write_bytes(blob[: keep if isinstance(keep, int) else int(len(blob) * keep)])
    _weights_error(weights, "not a readable safetensors file, truncated or corrupted")


def test_corrupted_tensor_bytes_are_detected(weights):
    blob = bytearray(weights.read_bytes())
    data_start = 8 + int.from_bytes(blob[:8], "little")
    middle = (data_start + len(blob)) // 2
    blob[middle] ^= 0x10
    weights.write_bytes(bytes(blob))
    _weights_error(weights, "corrupted tensor data")


def test_corrupted_header_bytes_are_reported(weights):
    # A damaged byte anywhere in the JSON header: either still a valid file (say, a
    # letter of the description changed) or a WeightsError naming the file, nothing else.
    blob = weights.read_bytes()
    header_end = 8 + int.from_bytes(blob[:8], "little")
    refused = 0
    for where in np.linspace(8, header_end - 1, 60).astype(int):
        for byte in (ord("#"), blob[where] ^ 0x01):
            damaged = bytearray(blob)
            damaged[where] = byte
            weights.write_bytes(bytes(damaged))
            try:
                load_model(weights, device="cpu")
            except WeightsError as exc:
                assert str(weights) in _one_line(exc)
                refused += 1
    assert refused > 60
    damaged = bytearray(blob)
    damaged[8] = ord("#")  # the header's opening brace
    weights.write_bytes(bytes(damaged))
    _weights_error(weights, "not a readable safetensors file")


def test_corrupted_header_length_is_reported(weights):
    blob = bytearray(weights.read_bytes())
    blob[5] = 0x7F  # an absurd header length
    weights.write_bytes(bytes(blob))
    _weights_error(weights, "safetensors")


def test_empty_weights_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    _weights_error(path, "not a readable safetensors file")


def test_nan_weights_without_checksum_are_refused(weights):
    # Files from other tools carry no checksum; NaN/Inf weights are still caught.
    tensors = load_file(str(weights))
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[name][0] = float("nan")
    save_file(tensors, str(weights), metadata={"mscgm": _header(weights)["mscgm"]})
    _weights_error(weights, f"tensor '{name}' contains NaN or Inf")


def _rewrite_metadata(path: Path, change) -> None:
    meta = json.loads(_header(path)["mscgm"])
    change(meta)
    save_file(load_file(str(path)), str(path), metadata={"mscgm": json.dumps(meta)})


@pytest.mark.parametrize("version", [3, 3.0, "3"])
def test_future_format_version_in_any_spelling(weights, version):
    _rewrite_metadata(weights, lambda m: m.update(format_version=version, future_field=1))
    _weights_error(weights, "newer napari-mscgm .*upgrade")


def test_metadata_describing_other_networks(weights):
    # More levels in the U-Net: tensors the file does not have.
    _rewrite_metadata(weights, lambda m: m["networks"]["unet"].update(channel_mults=[1, 2, 2]))
    _weights_error(weights, "does not match its architecture: missing tensors")


def test_metadata_describing_a_huge_network_allocates_nothing(weights):
    # A U-Net 4096 channels wide would need several GB if built; the mismatch with the
    # stored tensors is found on the meta device first.
    def huge(meta):
        meta["networks"]["unet"].update(base_channels=4096)

    _rewrite_metadata(weights, huge)
    _weights_error(weights, "wrong architecture")


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda m: m.update(scale=3), "invalid model metadata: scale"),
        (lambda m: m["networks"]["unet"].update(channel_mults=[]), "channel_mults"),
        (lambda m: m["bbdp"].update(max_var=float("inf")), "max_var"),
        (lambda m: m.pop("networks") and m.update(levels=3), "3 wavelet levels need 3"),
        (lambda m: m.update(surprise=True), "surprise"),
    ],
)
def test_invalid_metadata_values(weights, change, match):
    _rewrite_metadata(weights, change)
    _weights_error(weights, match)


def test_metadata_that_is_not_json_or_missing(weights):
    tensors = load_file(str(weights))
    save_file(tensors, str(weights), metadata={"mscgm": "{" * 100_000})
    _weights_error(weights, "not valid JSON")
    save_file(tensors, str(weights), metadata={"other": "x"})
    _weights_error(weights, "no 'mscgm' metadata")


def test_extra_and_missing_tensors_name_them(weights):
    tensors = load_file(str(weights))
    meta = _header(weights)
    removed = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != removed}, str(weights), metadata=meta)
    assert removed in _weights_error(weights, "missing tensors")
    save_file({**tensors, "stowaway": torch.zeros(2)}, str(weights), metadata=meta)
    assert "stowaway" in _weights_error(weights, "unexpected tensors")


def test_bundled_model_with_a_damaged_copy_fails_its_checksum(tmp_path, monkeypatch):
    real = bundled.bundled_dir()
    name = bundled.bundled_names()[0]
    copy = tmp_path / "models"
    copy.mkdir()
    shutil.copy(real / "SHA256SUMS", copy / "SHA256SUMS")
    for entry in real.glob("*.safetensors"):
        shutil.copy(entry, copy / entry.name)
    monkeypatch.setattr(bundled, "bundled_dir", lambda: copy)
    assert load_model(name, device="cpu").sha256 is not None  # the intact copy loads
    path = copy / f"{name}.safetensors"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one flipped bit in the weights
    path.write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match=f"SHA-256 mismatch for bundled model '{name}'") as info:
        load_model(name, device="cpu")
    message = _one_line(info.value)
    assert str(path) in message and "reinstall" in message


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_pickle_is_never_unpickled(tmp_path, monkeypatch, suffix):
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch PWNED",))

    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps(Boom(), protocol=2))
    _weights_error(path, "pickle")
    assert not (tmp_path / "PWNED").exists()


# ================================================================ output files
@pytest.fixture
def small(rng) -> np.ndarray:
    return rng.random((2, 24, 24)).astype(np.float32)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_zarr_output_appears_only_when_complete(tmp_path, tiny_model, small, monkeypatch):
    out = tmp_path / "r.zarr"
    seen = []

    def watch(done, total):
        # While the work runs the final name does not exist; the data go to a .part.
        seen.append((out.exists(), _leftovers(tmp_path)))

    restore(small, tiny_model, axes="ZYX", out=out, progress=watch, batch_size=1, **FAST)
    assert seen and all(not exists for exists, _ in seen)
    assert all(parts == [f".r.zarr.{os.getpid()}.part"] for _, parts in seen)
    assert out.is_dir() and _leftovers(tmp_path) == []
    assert read_run_metadata(out)["steps"] == 1


@pytest.mark.parametrize("kind", ["r.zarr", "r.ome.tif"])
@pytest.mark.parametrize("stop", [RuntimeError("boom"), KeyboardInterrupt()])
def test_interrupted_write_leaves_nothing(tmp_path, tiny_model, small, kind, stop):
    out = tmp_path / kind

    def progress(done, total):
        if done == 2:
            raise stop

    with pytest.raises(type(stop)):
        restore(small, tiny_model, axes="ZYX", out=out, progress=progress, batch_size=1, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_earlier_result_survives_a_failed_rewrite(tmp_path, tiny_model, small):
    out = tmp_path / "r.zarr"
    restore(small, tiny_model, axes="ZYX", out=out, **FAST)
    before = np.asarray(zarr.open_group(str(out), mode="r")["0"])

    def fail(done, total):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        restore(small * 2, tiny_model, axes="ZYX", out=out, progress=fail, **FAST)
    np.testing.assert_array_equal(np.asarray(zarr.open_group(str(out), mode="r")["0"]), before)
    assert _leftovers(tmp_path) == []


def test_stale_part_from_a_killed_process_is_replaced(tmp_path, tiny_model, small):
    """SIGKILL a real writer mid-run; the next run of the same output succeeds and cleans up."""
    out = tmp_path / "r.zarr"
    marker = tmp_path / "started"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import numpy as np, torch
        from conftest import tiny_config, trained_like
        from napari_mscgm import MSCGM, restore
        model = trained_like(MSCGM(tiny_config())).eval()
        def progress(done, total):
            open({str(marker)!r}, "w").close()
            time.sleep(600)
        restore(np.ones((2, 24, 24), np.float32), model, axes="ZYX", steps=1,
                out={str(out)!r}, progress=progress)
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert child.poll() is None, "the writer exited before it started writing"
            assert time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert _leftovers(tmp_path) == [f".r.zarr.{child.pid}.part"] and not out.exists()
    restore(small, tiny_model, axes="ZYX", out=out, **FAST)
    assert out.is_dir() and _leftovers(tmp_path) == []
    np.testing.assert_array_equal(
        np.asarray(zarr.open_group(str(out), mode="r")["0"]),
        restore(small, tiny_model, axes="ZYX", **FAST),
    )


def test_temporary_of_a_live_process_is_kept(tmp_path):
    # Another process writing the same output keeps its temporary (its pid is alive).
    target = tmp_path / "r.zarr"
    live = tmp_path / f".r.zarr.{os.getppid()}.part"
    live.mkdir()
    dead_own = tmp_path / f".r.zarr.{os.getpid()}.part"
    dead_own.mkdir()
    unrelated = tmp_path / ".other.zarr.1.part"
    unrelated.mkdir()
    assert temporary_path(target) == dead_own
    assert live.exists() and unrelated.exists() and not dead_own.exists()


def test_missing_output_directory_is_not_created(tmp_path, tiny_model, small):
    out = tmp_path / "missing" / "r.zarr"
    with pytest.raises(OutputError, match="does not exist; create it first") as info:
        restore(small, tiny_model, axes="ZYX", out=out, **FAST)
    assert str(out.parent) in _one_line(info.value)
    assert not out.parent.exists()


def test_output_parent_that_is_a_file(tmp_path, tiny_model, small):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is not a directory"):
        restore(small, tiny_model, axes="ZYX", out=tmp_path / "file" / "r.zarr", **FAST)


@pytest.mark.parametrize("name", ["data.zarr", "data.ome.tif"])
def test_a_foreign_directory_is_never_replaced(tmp_path, tiny_model, small, name):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not a Zarr result; move it away"):
        restore(small, tiny_model, axes="ZYX", out=folder, **FAST)
    assert (folder / "precious.txt").read_text() == "keep me"


def test_read_only_directory_is_refused_up_front(tmp_path, tiny_model, small, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode)
    )
    with pytest.raises(OutputError, match="not writable") as info:
        restore(small, tiny_model, axes="ZYX", out=tmp_path / "r.zarr", **FAST)
    assert str(tmp_path) in _one_line(info.value)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only dirs"
)
def test_read_only_directory_for_real(tmp_path, tiny_model, small):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="not writable"):
            restore(small, tiny_model, axes="ZYX", out=locked / "r.zarr", **FAST)
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize(
    "code,match",
    [
        (errno.ENOSPC, "No space left on device.*free some space"),
        (errno.EROFS, "choose a directory"),
    ],
)
def test_full_or_read_only_disk_during_zarr_write(
    tmp_path, tiny_model, small, monkeypatch, code, match
):
    out = tmp_path / "r.zarr"
    real = zarr.Array.__setitem__
    calls = []

    def failing(self, index, value):
        calls.append(index)
        if len(calls) > 1:  # the first chunk lands, then the disk is full
            raise OSError(code, os.strerror(code))
        return real(self, index, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", failing)
    with pytest.raises(OutputError, match=match) as info:
        restore(small, tiny_model, axes="ZYX", out=out, **FAST)
    assert _one_line(info.value).startswith(f"{out}: cannot write")
    assert list(tmp_path.iterdir()) == []


def test_full_disk_during_tiff_write(tmp_path, tiny_model, small, monkeypatch):
    out = tmp_path / "r.ome.tif"

    def full(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"II*\x00partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tifffile, "imwrite", full)
    with pytest.raises(OutputError, match=r"r.ome.tif: cannot write \(No space left on device\)"):
        restore(small, tiny_model, axes="ZYX", out=out, **FAST)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="No space left"):
        write_ome_tiff(tmp_path / "w.tif", small, axes="ZYX")
    assert list(tmp_path.iterdir()) == []


def test_samples_write_both_files_atomically(tmp_path, tiny_model, small):
    result = restore(small, tiny_model, axes="ZYX", out=tmp_path / "r.zarr", samples=2, steps=1)
    assert isinstance(result, MeanStd)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.zarr", "r_std.zarr"]


# ================================================================ resources
def test_available_memory_is_read():
    available = available_memory()
    if sys.platform.startswith("linux"):
        assert available is not None and 10**7 < available < 2**50


def test_forward_memory_estimate_is_plausible(tiny_model):
    base = tiny_model.forward_bytes(512, 512, 1)
    assert tiny_model.forward_bytes(1024, 512, 1) == pytest.approx(2 * base, rel=0.01)
    assert tiny_model.forward_bytes(1024, 1024, 1) == pytest.approx(4 * base, rel=0.01)
    assert tiny_model.forward_bytes(512, 512, 3) == pytest.approx(3 * base, rel=0.01)
    wider = MSCGM(tiny_config().model_copy(update={"networks": type(tiny_config().networks)()}))
    assert wider.forward_bytes(512, 512, 1) > 2 * base  # default widths are larger
    # Within a factor of two of the measured peak (about 140 bytes per target pixel).
    assert 70 < base / 512**2 < 300


def test_untiled_run_that_cannot_fit_is_refused_with_a_tile_size(tiny_model, rng, monkeypatch):
    image = _frozen(rng.random((160, 160)).astype(np.float32))
    needed = memory.pass_bytes(tiny_model, 160, 160, 1, 1)
    monkeypatch.setattr(memory, "available_memory", lambda: needed // 3)
    with pytest.raises(ResourceError, match=r"a 160×160 plane untiled needs about .* GB") as info:
        restore(image, tiny_model, tile_size=None, **FAST)
    message = _one_line(info.value)
    suggested = int(message.rsplit("tile_size=", 1)[1].split()[0])
    assert isinstance(info.value, MemoryError)
    # The suggestion works under the same memory.
    assert suggested < 160
    out = restore(image, tiny_model, tile_size=suggested, overlap=8, **FAST)
    assert out.shape == (320, 320)


def test_small_untiled_run_passes_the_memory_check(tiny_model, rng):
    out = restore(rng.random((40, 40)), tiny_model, tile_size=None, **FAST)
    assert out.shape == (80, 80)


def test_estimate_grows_with_pixels_so_small_runs_pass(tiny_model, monkeypatch, rng):
    # 100 MB free: a 64×64 plane fits, a 2048×2048 plane does not.
    monkeypatch.setattr(memory, "available_memory", lambda: 100 * 10**6)
    assert restore(rng.random((64, 64)), tiny_model, tile_size=None, **FAST).shape == (128, 128)
    with pytest.raises(ResourceError, match="untiled"):
        restore(np.zeros((2048, 2048), np.float32), tiny_model, tile_size=None, **FAST)


def test_cpu_allocator_failure_counts_as_out_of_memory(monkeypatch, tiny_model, rng):
    image = rng.random((16, 64)).astype(np.float32)
    real = tiny_model.sample

    def sample(degraded, **kwargs):
        if degraded.shape[0] > 1:
            raise RuntimeError(
                "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 GB"
            )
        return real(degraded, **kwargs)

    monkeypatch.setattr(tiny_model, "sample", sample)
    with pytest.warns(ResourceWarning, match="retrying with 2"):
        out = restore(image, tiny_model, tile_size=16, overlap=0, batch_size=4, **FAST)
    assert out.shape == (32, 128) and np.isfinite(out).all()


def test_tile_oom_is_a_typed_resource_error():
    assert issubclass(TileOOMError, ResourceError) and issubclass(TileOOMError, MSCGMError)


def test_tiles_too_big_for_memory_get_a_smaller_suggestion(tiny_model, rng, monkeypatch):
    needed = memory.pass_bytes(tiny_model, 128, 128, 4, 1)
    monkeypatch.setattr(memory, "available_memory", lambda: needed // 2)
    image = rng.random((128, 600)).astype(np.float32)
    with pytest.raises(ResourceError, match=r"128×128 tiles, 4 per forward pass, needs") as info:
        restore(image, tiny_model, tile_size=128, overlap=0, batch_size=4, **FAST)
    suggested = int(_one_line(info.value).rsplit("tile_size=", 1)[1].split()[0])
    assert suggested <= 64
