"""Tiling: layout, alignment, blending, tile-layout independence, seams, N-D axes, progress."""

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from napari_mscgm import load_model, restore
from napari_mscgm.core.normalize import PercentileNormalizer
from napari_mscgm.restoration.layout import blend_weights, plan_axis, tile_alignment


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(1, 700),
    tile=st.integers(16, 300),
    overlap=st.integers(0, 64),
    scale=st.sampled_from([1, 2, 4]),
    multiple=st.sampled_from([8, 16, 32]),
)
def test_layout_partitions_aligns_and_blends_to_one(length, tile, overlap, scale, multiple):
    overlap = min(overlap, tile // 4)
    align = tile_alignment(multiple, scale)
    plan = plan_axis(length, tile_size=tile, overlap=overlap, align=align)
    # Cores partition the axis; tiles contain their cores.
    assert plan.cores[0][0] == 0 and plan.cores[-1][1] == length
    for (a, b), (c, _) in zip(plan.cores, plan.cores[1:], strict=False):
        assert b == c and a < b
    for (a, b), (c, d) in zip(plan.cores, plan.tiles, strict=True):
        assert c <= a < b <= d
        # Every tile starts on the noise grid of the TARGET image.
        assert (c * scale) % multiple == 0
    # The blending weights are a partition of unity on the target grid.
    total = np.zeros(length * scale)
    for i, (c, d) in enumerate(plan.tiles):
        w = blend_weights(plan, i, scale)
        assert w.shape == ((d - c) * scale,) and (w >= 0).all()
        total[c * scale : d * scale] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_bad_tiling_parameters(tiny_model):
    image = np.zeros((32, 32), np.float32)
    with pytest.raises(ValueError, match="half of tile_size"):
        restore(image, tiny_model, steps=1, tile_size=64, overlap=40)
    with pytest.raises(ValueError, match="tile_size"):
        restore(image, tiny_model, steps=1, tile_size=4)


@pytest.fixture(scope="module")
def texture():
    # Stationary texture: gradient energy is the same everywhere, so a seam would stand out.
    rng = np.random.default_rng(7)
    return (ndimage.gaussian_filter(rng.random((272, 272)), 1.0) * 3000 + 200).astype(np.float32)


@pytest.fixture(scope="module")
def bundled():
    # Layout independence is a property of the models users run: a trained network's output
    # depends on local context, a random network's on everything in its receptive field.
    return load_model("beads-sr2x", device="cpu")


@pytest.fixture(scope="module")
def restored(bundled, texture):
    kw = {"steps": 3, "seed": 4}
    return {
        tile: restore(texture, bundled, tile_size=tile, overlap=32, **kw)
        for tile in (None, 128, 256)
    }


def _psnr(a, ref):
    span = float(ref.max() - ref.min())
    return 10 * np.log10(span**2 / np.mean((a.astype(np.float64) - ref) ** 2))


def test_tile_size_does_not_change_the_result(restored):
    whole = restored[None]
    assert whole.shape == (544, 544)
    for tile in (128, 256):
        assert _psnr(restored[tile], whole) >= 40.0, tile
    assert _psnr(restored[128], restored[256]) >= 40.0


def test_batch_size_and_input_chunks_do_not_change_the_result(tiny_model, texture, restored):
    image = texture[:160, :200]
    a = restore(image, tiny_model, steps=3, seed=4, tile_size=128, overlap=32, batch_size=1)
    b = restore(
        da.from_array(image, chunks=(50, 70)),
        tiny_model,
        steps=3,
        seed=4,
        tile_size=128,
        overlap=32,
        batch_size=8,
    ).compute()
    # Batching changes only float rounding (CPU kernels differ per batch size).
    np.testing.assert_allclose(a, b, atol=1e-3 * float(np.abs(a).max()))


def _seam_ratio(out, boundaries, halo, period):
    """Gradient energy across tile borders (core boundaries, overlap edges) over elsewhere.

    Haar blocks make the energy of pixel pairs periodic (pairs inside a block
    differ from pairs across blocks), so "elsewhere" is the pairs of the same
    phase modulo ``period`` (tile borders all share one phase).
    """
    gx = (np.diff(out.astype(np.float64), axis=1) ** 2).mean(axis=0)
    gy = (np.diff(out.astype(np.float64), axis=0) ** 2).mean(axis=1)
    cols = sorted({p - 1 for b in boundaries for p in (b - halo, b, b + halo)})
    same_phase = [c for c in range(len(gx)) if c % period == cols[0] % period and c not in cols]
    border = np.r_[gx[cols], gy[cols]]
    rest = np.r_[gx[same_phase], gy[same_phase]]
    return border.mean() / rest.mean()


def test_no_seams(restored, bundled):
    # A generative model's texture varies from column to column, so a handful of border
    # columns differs from the average even with no tiling at all (0.91 and 1.10 for the
    # untiled result at these columns). The seam metric is therefore relative to the
    # untiled restoration: border energy over elsewhere, tiled, against the same, untiled.
    align = tile_alignment(bundled.size_multiple, bundled.scale)
    for tile in (128, 256):
        plan = plan_axis(272, tile_size=tile, overlap=32, align=align)
        bounds = [a * 2 for a, _ in plan.cores[1:]]
        args = (bounds, plan.halo * 2, bundled.size_multiple)
        ratio = _seam_ratio(restored[tile], *args) / _seam_ratio(restored[None], *args)
        assert abs(ratio - 1.0) <= 0.10, (tile, ratio)
    # The metric does see a seam: a step of 5 % of the range along the core boundaries.
    stepped = restored[128].copy()
    plan = plan_axis(272, tile_size=128, overlap=32, align=align)
    b = plan.cores[1][0] * 2
    stepped[:, b:] += 0.05 * float(np.ptp(stepped))
    stepped[b:, :] += 0.05 * float(np.ptp(stepped))
    args = ([b], 0, bundled.size_multiple)
    assert _seam_ratio(stepped, *args) / _seam_ratio(restored[None], *args) > 1.10


def test_super_resolution_chunks_scale_and_align(tiny_model):
    image = da.zeros((3, 100, 140), dtype=np.uint16, chunks=(1, 64, 64))
    out = restore(image, tiny_model, steps=1, axes="ZYX", tile_size=64, overlap=16)
    assert isinstance(out, da.Array) and out.shape == (3, 200, 280)
    align = tile_alignment(tiny_model.size_multiple, tiny_model.scale)
    plan = plan_axis(140, tile_size=64, overlap=16, align=align)
    assert out.chunks[2] == tuple(2 * c for c in plan.chunks)
    assert all(2 * a % tiny_model.size_multiple == 0 for a, _ in plan.tiles)


def test_channels_are_independent_and_axes_any_order(tiny_model, rng):
    base = rng.random((2, 2, 24, 32)).astype(np.float32)  # C, Z, Y, X
    base[1] *= 1000  # channels with different intensity ranges
    out = restore(base, tiny_model, steps=2, seed=1, axes="CZYX", tile_size=16, overlap=4)
    assert out.shape == (2, 2, 48, 64)
    # Channel 0 does not depend on channel 1 (per-channel normalisation, own noise).
    other = base.copy()
    other[1] = rng.random((2, 24, 32)) * 50
    again = restore(other, tiny_model, steps=2, seed=1, axes="CZYX", tile_size=16, overlap=4)
    np.testing.assert_array_equal(out[0], again[0])
    # Any axis order gives the same planes.
    moved = np.moveaxis(base, 0, -1)  # Z, Y, X, C
    permuted = restore(moved, tiny_model, steps=2, seed=1, axes="ZYXC", tile_size=16, overlap=4)
    np.testing.assert_array_equal(np.moveaxis(permuted, -1, 0), out)
    # 5D with T: each plane restored on its own; T=1 equals the 4D result.
    five = restore(base[None], tiny_model, steps=2, seed=1, axes="TCZYX", tile_size=16, overlap=4)
    np.testing.assert_array_equal(five[0], out)


def test_normalisation_is_global_per_channel(tiny_model, rng):
    image = rng.random((2, 48, 48)).astype(np.float32)
    image[1] *= 10
    _, meta = restore(
        image, tiny_model, steps=1, axes="CYX", tile_size=16, overlap=4, return_metadata=True
    )
    expected = [np.percentile(image[c], [1, 99.8]) for c in range(2)]
    np.testing.assert_allclose(meta["normalization"]["values"], expected, rtol=1e-6)
    assert meta["tile_size"] == 16 and meta["overlap"] == 4
    # Huge stacks: a bounded subsample gives nearly the same percentiles.
    stack = rng.gamma(2.0, 100.0, (1, 1, 8, 256, 256))
    full = PercentileNormalizer(1, 99.8).fit_stack(stack).values
    sub = PercentileNormalizer(1, 99.8).fit_stack(stack, max_samples=20_000).values
    np.testing.assert_allclose(sub, full, rtol=0.05)


def test_progress_after_each_batch_and_cancel(tiny_model, rng):
    image = rng.random((64, 64)).astype(np.float32)
    calls = []
    restore(
        image,
        tiny_model,
        steps=1,
        tile_size=32,
        overlap=8,
        batch_size=2,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls and calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == list(range(1, len(calls) + 1))

    class Stop(Exception):
        pass

    seen = []

    def cancel(done, total):
        seen.append(done)
        raise Stop

    with pytest.raises(Stop):
        restore(image, tiny_model, steps=1, tile_size=32, overlap=8, batch_size=1, progress=cancel)
    assert seen == [1]  # stopped after the first batch
