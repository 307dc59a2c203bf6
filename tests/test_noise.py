import numpy as np
import pytest
import torch

from napari_mscgm.core.noise import NoiseKey, gaussian_field


def test_standard_normal_statistics():
    z = gaussian_field([NoiseKey(seed=3)], stream=0, level=0, shape=(256, 256), channels=2)
    assert abs(z.mean().item()) < 0.02
    assert abs(z.std().item() - 1) < 0.02
    assert abs((z[0, 0] * z[0, 1]).mean().item()) < 0.02
    assert abs((z[0, 0, :, 1:] * z[0, 0, :, :-1]).mean().item()) < 0.02
    assert abs((z[0, 0, 1:] * z[0, 0, :-1]).mean().item()) < 0.02


@pytest.mark.parametrize("level", [0, 1, 2])
def test_tile_equals_crop_of_whole(level):
    stride = 2**level
    whole = gaussian_field(
        [NoiseKey(seed=7, sample=1, plane=(0, 1, 2))], stream=5, level=level, shape=(64, 64)
    )
    tile = gaussian_field(
        [NoiseKey(seed=7, sample=1, plane=(0, 1, 2), y0=16 * stride, x0=24 * stride)],
        stream=5,
        level=level,
        shape=(20, 30),
    )
    assert torch.equal(tile[0, 0], whole[0, 0, 16:36, 24:54])


def test_every_key_part_changes_the_noise():
    base = dict(seed=1, sample=0, plane=(0, 0, 0))
    ref = gaussian_field([NoiseKey(**base)], stream=0, level=0, shape=(8, 8))
    variants = [
        dict(base, seed=2),
        dict(base, seed=1 + 2**32),
        dict(base, sample=1),
        dict(base, plane=(1, 0, 0)),
        dict(base, plane=(0, 1, 0)),
        dict(base, plane=(0, 0, 1)),
    ]
    for v in variants:
        other = gaussian_field([NoiseKey(**v)], stream=0, level=0, shape=(8, 8))
        assert not torch.equal(ref, other), v
    assert not torch.equal(ref, gaussian_field([NoiseKey(**base)], stream=1, level=0, shape=(8, 8)))


def test_batch_items_are_independent_of_batching():
    keys = [NoiseKey(seed=5, sample=s) for s in range(3)]
    batched = gaussian_field(keys, stream=2, level=1, shape=(16, 16))
    for i, key in enumerate(keys):
        assert torch.equal(batched[i], gaussian_field([key], stream=2, level=1, shape=(16, 16))[0])


def test_misaligned_origin_rejected():
    with pytest.raises(ValueError, match="multiple"):
        gaussian_field([NoiseKey(seed=0, y0=3)], stream=0, level=2, shape=(4, 4))


def test_finite_everywhere():
    z = gaussian_field([NoiseKey(seed=2**63)], stream=999, level=3, shape=(128, 128)).numpy()
    assert np.isfinite(z).all()
