"""The one percentile normaliser, shared by restoration, training data, CARE and metrics."""

import numpy as np
import pytest

from napari_mscgm.core.normalize import PercentileNormalizer
from napari_mscgm.errors import InputError


def test_percentiles_map_to_0_and_1_and_back(rng):
    image = rng.gamma(2.0, 50.0, (64, 64)) + 100
    norm = PercentileNormalizer(1, 99.8).fit(image)
    out = norm.normalize(image)
    assert out.dtype == np.float64
    assert np.percentile(out, 1) == pytest.approx(0, abs=1e-9)
    assert np.percentile(out, 99.8) == pytest.approx(1, abs=1e-9)
    np.testing.assert_allclose(norm.denormalize(out), image, rtol=1e-12)


def test_flat_and_constant_channels(rng):
    sparse = np.zeros((64, 64))
    sparse[3, 4] = sparse[40, 50] = 1000.0  # both percentiles are 0: the range is used
    assert PercentileNormalizer(1, 99.8).fit(sparse).limits() == (0.0, 1000.0)
    constant = PercentileNormalizer().fit(np.full((8, 8), 5.0))
    assert constant.is_constant() and constant.span() == 1.0
    assert np.all(constant.normalize(np.full((8, 8), 5.0)) == 0)
    assert np.all(np.isfinite(PercentileNormalizer().fit(np.ones((8, 8))).normalize(np.ones(4))))


def test_stacks_fit_per_channel_and_leave_out_non_finite(rng):
    stack = rng.random((2, 3, 4, 16, 16))
    stack[:, 1] *= 100
    stack[0, 2, 0, 0, 0] = np.nan
    norm = PercentileNormalizer(1, 99.8).fit_stack(stack)
    assert norm.values.shape == (3, 2)
    expected = np.percentile(stack[:, 1], [1, 99.8])
    np.testing.assert_allclose(norm.values[1], expected)
    assert np.all(np.isfinite(norm.values))
    with pytest.raises(InputError, match="channel 0 has no finite"):
        PercentileNormalizer().fit_stack(np.full((1, 1, 1, 4, 4), np.inf))


def test_an_unfitted_normaliser_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        PercentileNormalizer().normalize(np.zeros(3))
