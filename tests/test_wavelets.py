import numpy as np
import pytest
import pywt
import torch

from napari_mscgm.core.wavelets import haar_dwt2, haar_idwt2, pad_to_multiple


@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("shape", [(16, 16), (32, 24), (64, 8)])
def test_matches_pywavelets(levels, shape, rng):
    x = rng.standard_normal(shape)
    ll, details = haar_dwt2(torch.from_numpy(x)[None, None], levels)
    reference = pywt.wavedec2(x, "haar", level=levels)
    np.testing.assert_allclose(ll[0, 0].numpy(), reference[0], atol=1e-12)
    # pywt lists details coarsest first; ours are finest first, each stacked (H, V, D).
    for k in range(1, levels + 1):
        for band in range(3):
            np.testing.assert_allclose(
                details[k - 1][0, 0, band].numpy(), reference[-k][band], atol=1e-12
            )


def test_round_trip_float32_batched(rng):
    x = torch.from_numpy(rng.standard_normal((3, 2, 64, 32)).astype(np.float32))
    ll, details = haar_dwt2(x, 3)
    assert ll.shape == (3, 2, 8, 4)
    assert [d.shape for d in details] == [(3, 2, 3, 32, 16), (3, 2, 3, 16, 8), (3, 2, 3, 8, 4)]
    assert (haar_idwt2(ll, details) - x).abs().max() < 1e-5


def test_orthonormal_energy_preserved(rng):
    x = torch.from_numpy(rng.standard_normal((1, 1, 32, 32)))
    ll, details = haar_dwt2(x, 2)
    energy = ll.square().sum() + sum(d.square().sum() for d in details)
    assert torch.isclose(energy, x.square().sum())


def test_ll_is_scaled_local_mean():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    ll, _ = haar_dwt2(x, 2)
    assert ll.item() == pytest.approx(4 * x.mean().item())


@pytest.mark.parametrize("shape", [(5, 7), (1, 1), (13, 2), (3, 17)])
def test_padding_reflects_and_crops_back(shape, rng):
    x = torch.from_numpy(rng.standard_normal((1, 1, *shape)))
    padded, size = pad_to_multiple(x, 8)
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert size == shape
    assert torch.equal(padded[..., : shape[0], : shape[1]], x)
    ll, details = haar_dwt2(padded, 3)
    assert torch.allclose(haar_idwt2(ll, details)[..., : shape[0], : shape[1]], x)


def test_reflect_padding_mirrors_about_edge_pixel():
    x = torch.tensor([[[[1.0, 2.0, 3.0]]]]).expand(1, 1, 2, 3)
    padded, _ = pad_to_multiple(x, 4)
    assert padded[0, 0, 0].tolist() == [1.0, 2.0, 3.0, 2.0]


def test_odd_size_is_rejected_without_padding():
    with pytest.raises(ValueError, match="even"):
        haar_dwt2(torch.zeros(1, 1, 5, 4), 1)
