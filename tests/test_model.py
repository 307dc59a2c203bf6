import copy
import json
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from safetensors.torch import load_file, save_file

from napari_mscgm import MSCGM, ModelConfig, WeightsError, list_models, load_model, save_model
from napari_mscgm.config import FORMAT_VERSION
from napari_mscgm.core.networks import (
    HighFrequencyGenerator,
    PatchDiscriminator,
    TimeConditionedUNet,
)
from napari_mscgm.core.noise import NoiseKey
from napari_mscgm.model_io import bundled


def _untrained_bridge(model: MSCGM) -> MSCGM:
    """Zero the U-Net's output layer: it predicts x_t − x0 = 0, so the bridge returns y's LL."""
    with torch.no_grad():
        model.unet.core.out_conv.weight.zero_()
        model.unet.core.out_conv.bias.zero_()
    return model


def _haar_projection(image: torch.Tensor, levels: int) -> torch.Tensor:
    """Keep only LL_S: every 2**S × 2**S block replaced by its mean."""
    block = 2**levels
    means = F.avg_pool2d(image, block)
    return means.repeat_interleave(block, -2).repeat_interleave(block, -1)


def test_parts_compose_to_the_haar_projection_before_training(rng):
    # A fresh generator outputs no detail (zero-initialised last layer), and the zeroed
    # U-Net keeps y's LL_S, so the whole chain reduces to the DWT → LL_S → IDWT projection.
    model = _untrained_bridge(MSCGM(tiny_config(scale=1, levels=2)))
    clean = torch.from_numpy(rng.random((2, 1, 40, 56)).astype(np.float32))
    out = model.sample(clean, keys=[NoiseKey(0), NoiseKey(0, sample=1)], steps=7, eta=0.0)
    assert out.shape == clean.shape
    assert (out - _haar_projection(clean, 2)).abs().max() < 1e-5


def test_super_resolution_resamples_bicubically(rng):
    model = _untrained_bridge(MSCGM(tiny_config(scale=2, levels=2)))
    small = torch.from_numpy(rng.random((1, 1, 24, 20)).astype(np.float32))
    up = model.upsample(small)
    assert up.shape == (1, 1, 48, 40)
    expected = F.interpolate(small, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.allclose(up, expected)
    out = model.sample(up, keys=[NoiseKey(0)], steps=3, eta=0.0)
    assert torch.allclose(out, _haar_projection(expected, 2), atol=1e-5)


def test_networks_shapes_and_time_conditioning():
    unet = TimeConditionedUNet(channels=1, base_channels=8, channel_mults=(1, 2, 2), attention=True)
    x = torch.randn(2, 1, 16, 16)
    out0 = unet(x, torch.tensor([0, 0]), x)
    out1 = unet(x, torch.tensor([900, 900]), x)
    assert out0.shape == x.shape
    assert not torch.allclose(out0, out1)
    gen = HighFrequencyGenerator(base_channels=8)
    bands = gen(
        torch.randn(2, 1, 8, 8),
        torch.randn(2, 1, 8, 8),
        torch.randn(2, 1, 3, 8, 8),
        torch.randn(2, 1, 8, 8),
    )
    assert bands.shape == (2, 1, 3, 8, 8)
    disc = PatchDiscriminator(base_channels=8)
    assert disc(torch.randn(2, 1, 32, 32)).shape[1] == 1


def _trained_like(gen: HighFrequencyGenerator) -> HighFrequencyGenerator:
    """A generator whose zero-initialised last layer has learnt something."""
    with torch.no_grad():
        torch.nn.init.normal_(gen.core.out_conv.weight, std=0.1)
    return gen.eval()


def test_pixel_norm_is_tile_size_independent():
    torch.manual_seed(0)
    gen = _trained_like(HighFrequencyGenerator(base_channels=8, channel_mults=(1,), norm="pixel"))
    args = [
        torch.randn(1, 1, 48, 48),
        torch.randn(1, 1, 48, 48),
        torch.randn(1, 1, 3, 48, 48),
        torch.randn(1, 1, 48, 48),
    ]
    whole = gen(*args)
    crop = gen(*(a[..., 8:40, 8:40] for a in args))
    # Nine 3×3 convolutions deep: pixels more than 9 px from the crop border see no border.
    # GroupNorm's tile-wide statistics would change them; per-pixel norm does not.
    assert torch.allclose(whole[..., 20:28, 20:28], crop[..., 12:20, 12:20], atol=1e-5)
    group = _trained_like(HighFrequencyGenerator(base_channels=8, channel_mults=(1,), norm="group"))
    g_whole = group(*args)
    g_crop = group(*(a[..., 8:40, 8:40] for a in args))
    assert not torch.allclose(g_whole[..., 20:28, 20:28], g_crop[..., 12:20, 12:20], atol=1e-5)


def test_default_sizes_are_cpu_sized():
    model = MSCGM(ModelConfig())
    n = sum(p.numel() for p in model.parameters())
    assert 300_000 < n < 3_000_000


def test_save_load_round_trip(tmp_path, tiny_model, rng):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    loaded = load_model(path, device="cpu")
    assert loaded.config == tiny_model.config
    assert loaded.sha256 is not None and len(loaded.sha256) == 64
    for (k, a), (_, b) in zip(
        tiny_model.state_dict().items(), loaded.state_dict().items(), strict=False
    ):
        assert torch.equal(a, b), k
    meta = json.loads(_header(path)["mscgm"])
    assert meta["format_version"] == FORMAT_VERSION and meta["scale"] == 2 and meta["levels"] == 2
    assert set(meta) >= {
        "name",
        "task",
        "wavelet",
        "bbdp",
        "networks",
        "normalization",
        "physics",
        "training",
        "license",
    }


def _header(path):
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        return fh.metadata()


class _Boom:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


@pytest.mark.parametrize("suffix", [".pt", ".ckpt", ".pth", ".safetensors"])
def test_pickle_checkpoints_are_refused_unopened(tmp_path, monkeypatch, suffix):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"evil{suffix}"
    with open(path, "wb") as fh:
        pickle.dump(_Boom(), fh)
    with pytest.raises(WeightsError, match="pickle") as info:
        load_model(path)
    assert str(path) in str(info.value)
    assert not (tmp_path / "PWNED").exists()


def test_torch_save_zip_refused(tmp_path, tiny_model):
    path = tmp_path / "model.safetensors"
    torch.save(tiny_model.state_dict(), path)
    with pytest.raises(WeightsError, match="pickle"):
        load_model(path)


def test_safetensors_whose_header_length_starts_like_a_pickle_loads(tmp_path, tiny_model):
    # The header length is the first 8 bytes (little-endian); a low byte of 0x80 is the
    # pickle magic byte and must not get a valid weights file refused.
    model = copy.deepcopy(tiny_model)  # the fixture is shared; do not touch its config
    for pad in range(0, 512, 8):
        config = model.config.model_copy(update={"description": "x" * pad})
        model.config = config
        path = save_model(model, tmp_path / "m.safetensors")
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a header length with low byte 0x80")
    assert load_model(path, device="cpu").config.description == config.description


def test_future_format_version(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    meta = json.loads(_header(path)["mscgm"])
    meta["format_version"] = 99
    save_file(load_file(str(path)), str(path), metadata={"mscgm": json.dumps(meta)})
    with pytest.raises(WeightsError, match="newer napari-mscgm"):
        load_model(path)


def test_missing_and_extra_tensors(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    tensors = load_file(str(path))
    meta = _header(path)
    removed = dict(tensors)
    removed.pop(next(iter(removed)))
    save_file(removed, str(path), metadata=meta)
    with pytest.raises(WeightsError, match="missing tensors"):
        load_model(path)
    save_file({**tensors, "extra.weight": torch.zeros(1)}, str(path), metadata=meta)
    with pytest.raises(WeightsError, match="unexpected tensors"):
        load_model(path)


def test_wrong_architecture(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    meta = json.loads(_header(path)["mscgm"])
    meta["networks"]["unet"]["base_channels"] = 16
    save_file(load_file(str(path)), str(path), metadata={"mscgm": json.dumps(meta)})
    with pytest.raises(WeightsError, match="wrong architecture"):
        load_model(path)


def test_truncated_file(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=str(path.name)):
        load_model(path)


def test_bundled_checksum_verified(tmp_path, tiny_model, monkeypatch):
    save_model(tiny_model, tmp_path / "fake-sr2x.safetensors")
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  fake-sr2x.safetensors\n")
    monkeypatch.setattr(bundled, "bundled_dir", lambda: tmp_path)
    assert list_models() == ["fake-sr2x"]
    with pytest.raises(WeightsError, match="SHA-256 mismatch"):
        load_model("fake-sr2x")
    digest = bundled.file_sha256(tmp_path / "fake-sr2x.safetensors")
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  fake-sr2x.safetensors\n")
    assert load_model("fake-sr2x").sha256 == digest


def test_missing_file_message(tmp_path):
    with pytest.raises(WeightsError, match="no such weights file"):
        load_model(tmp_path / "nope.safetensors")


def test_pixel_norm_fast_path_matches_the_definition():
    from napari_mscgm.core.networks import PixelGroupNorm

    torch.manual_seed(0)
    norm = PixelGroupNorm(1, 6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    mean = x.mean(dim=1, keepdim=True)
    var = x.var(dim=1, keepdim=True, unbiased=False)
    expected = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight[:, None, None]
    expected = expected + norm.bias[:, None, None]
    assert torch.allclose(norm(x), expected, atol=1e-5)
