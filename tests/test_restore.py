import dask.array as da
import numpy as np
import pytest

from napari_mscgm import InputError, MeanStd, restore


def test_same_seed_is_bitwise_identical_and_seeds_differ(tiny_model, rng):
    image = (rng.random((24, 40)) * 3000).astype(np.uint16)
    a = restore(image, tiny_model, steps=4, seed=11)
    b = restore(image, tiny_model, steps=4, seed=11)
    c = restore(image, tiny_model, steps=4, seed=12)
    assert a.dtype == np.float32 and a.shape == (48, 80)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_output_in_input_intensity_units(tiny_model, rng):
    image = 500.0 + 200.0 * rng.random((32, 32))
    out = restore(image, tiny_model, steps=2, seed=0)
    low, high = np.percentile(image, [1, 99.8])
    # An untrained model stays near its input; a normalised output would sit near [0, 1].
    assert low - 1000 < np.median(out) < high + 1000
    assert np.median(out) > 100


@pytest.mark.parametrize(
    "shape,axes,expected",
    [
        ((3, 16, 16), "ZYX", (3, 32, 32)),
        ((16, 2, 16), "YCX", (32, 2, 32)),
        ((2, 2, 2, 16, 16), "TCZYX", (2, 2, 2, 32, 32)),
        ((16, 16, 3), "YXZ", (32, 32, 3)),
    ],
)
def test_axes_and_plane_by_plane(tiny_model, rng, shape, axes, expected):
    image = rng.random(shape).astype(np.float32)
    out = restore(image, tiny_model, steps=2, seed=0, axes=axes)
    assert out.shape == expected


def test_planes_get_their_own_noise(tiny_model, rng):
    plane = rng.random((16, 16)).astype(np.float32)
    same = np.stack([plane, plane])
    out = restore(same, tiny_model, steps=3, seed=0, axes="ZYX")
    # identical content, different z → different noise keys → different samples
    assert not np.array_equal(out[0], out[1])
    # Plane 0's result does not depend on plane 1's content, given the same global
    # normalisation (both stacks hold the same multiset of values).
    shuffled_a = rng.permutation(plane.ravel()).reshape(plane.shape)
    shuffled_b = rng.permutation(plane.ravel()).reshape(plane.shape)
    a = restore(np.stack([plane, shuffled_a]), tiny_model, steps=3, seed=0, axes="ZYX")
    b = restore(np.stack([plane, shuffled_b]), tiny_model, steps=3, seed=0, axes="ZYX")
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], b[1])


def test_samples_give_mean_and_std(tiny_model, rng):
    image = rng.random((16, 16)).astype(np.float32)
    result = restore(image, tiny_model, steps=3, seed=0, samples=3, batch_size=2)
    assert isinstance(result, MeanStd)
    assert result.mean.shape == result.std.shape == (32, 32)
    assert (result.std >= 0).all() and result.std.max() > 0
    # Noise is keyed by sample index, so batching only changes float rounding
    # (CPU convolution kernels differ per batch size at the 1e-7 level).
    batch_one = restore(image, tiny_model, steps=3, seed=0, samples=3, batch_size=1)
    np.testing.assert_allclose(batch_one.mean, result.mean, atol=1e-4)
    np.testing.assert_allclose(batch_one.std, result.std, atol=1e-4)


def test_dask_input_matches_numpy(tiny_model, rng):
    image = rng.random((2, 24, 24)).astype(np.float32)
    a = restore(image, tiny_model, steps=2, seed=3, axes="ZYX")
    b = restore(da.from_array(image, chunks=(1, 12, 12)), tiny_model, steps=2, seed=3, axes="ZYX")
    np.testing.assert_array_equal(a, b)


def test_metadata(tiny_model, rng):
    image = rng.random((16, 16)).astype(np.float32)
    _, meta = restore(image, tiny_model, steps=3, seed=5, return_metadata=True)
    assert meta["steps"] == 3 and meta["seed"] == 5 and meta["samples"] == 1
    assert meta["model"] == "tiny" and meta["device"] == "cpu"
    assert meta["normalization"]["pmin"] == 1.0 and len(meta["normalization"]["values"]) == 1
    assert meta["input_shape"] == [16, 16] and meta["output_shape"] == [32, 32]


def test_random_seed_is_recorded(tiny_model, rng):
    image = rng.random((16, 16)).astype(np.float32)
    out, meta = restore(image, tiny_model, steps=2, seed=None, return_metadata=True)
    again = restore(image, tiny_model, steps=2, seed=meta["seed"])
    assert np.array_equal(out, again)


@pytest.mark.parametrize(
    "image,kwargs,match",
    [
        (np.zeros((8, 8), complex), {}, "complex"),
        (np.zeros((8, 8)), {"axes": "ZYX"}, "3 letters"),
        (np.zeros((8, 8)), {"axes": "YQ"}, "letters from"),
        (np.zeros(8), {}, "2D to 5D"),
        (np.full((8, 8), np.nan), {}, "finite"),
        (np.zeros((8, 8)), {"steps": 0}, "steps"),
        (np.zeros((8, 8)), {"samples": 0}, "samples"),
    ],
)
def test_bad_input_raises_typed_error(tiny_model, image, kwargs, match):
    with pytest.raises(InputError, match=match):
        restore(image, tiny_model, **kwargs)


def test_nan_pixel_refused(tiny_model):
    image = np.ones((8, 8))
    image[2, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        restore(image, tiny_model, steps=1)
