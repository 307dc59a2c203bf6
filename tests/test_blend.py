"""The observation blend: the input's own coarsest band where it is cleaner than the
bridge's, by a local noise estimate; tile-independent; fitted on held-out pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mscgm import restore
from napari_mscgm.config import ObservationBlend
from napari_mscgm.core.noise import NoiseKey
from napari_mscgm.core.wavelets import haar_pyramid
from napari_mscgm.evaluation.blend import fit_observation_blend


def _blended(model, floor, max_weight):
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    blend = ObservationBlend(floor=floor, max_weight=max_weight)
    copy.config = model.config.model_copy(update={"observation_blend": blend})
    return copy.eval()


def _smooth(shape=(64, 64)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (0.2 + 0.6 * np.exp(-((yy - 30) ** 2 + (xx - 34) ** 2) / 300.0)).astype(np.float32)


def _ll(image, levels):
    return haar_pyramid(image, levels)[0][-1]


def test_the_restored_band_moves_to_the_input_where_the_input_is_clean(tiny_model):
    degraded = torch.from_numpy(_smooth())[None, None]
    keys = [NoiseKey(0)]
    plain = tiny_model.sample(degraded, keys=keys, steps=2)
    kept = _blended(tiny_model, floor=1.0, max_weight=1.0).sample(degraded, keys=keys, steps=2)
    faint = _blended(tiny_model, floor=1.0, max_weight=1e-6).sample(degraded, keys=keys, steps=2)
    levels, observed = tiny_model.levels, _ll(degraded, tiny_model.levels)
    # a smooth noiseless input has little detail energy, so w ≈ max_weight; the inverse
    # transform keeps the blended LL_S in the output exactly
    bridge_error = float((_ll(plain, levels) - observed).abs().mean())
    assert bridge_error > 0.05  # the untrained bridge is far off
    assert float((_ll(kept, levels) - observed).abs().mean()) < 0.03 * bridge_error
    assert torch.allclose(_ll(faint, levels), _ll(plain, levels), atol=1e-4)


def test_noise_lowers_the_weight_of_the_input(tiny_model, rng):
    clean = torch.from_numpy(_smooth())[None, None]
    noisy = clean + 0.3 * torch.from_numpy(rng.standard_normal((64, 64)).astype(np.float32))
    model = _blended(tiny_model, floor=0.01, max_weight=1.0)
    levels = model.levels
    for image, expected in ((clean, "input"), (noisy, "bridge")):
        out = _ll(model.sample(image, keys=[NoiseKey(0)], steps=2), levels)
        to_input = float((out - _ll(image, levels)).abs().mean())
        plain = _ll(tiny_model.sample(image, keys=[NoiseKey(0)], steps=2), levels)
        to_bridge = float((out - plain).abs().mean())
        assert (to_input < to_bridge) == (expected == "input"), expected


def test_the_blend_does_not_depend_on_tiling(rng):
    # As for every layout test: a trained model (a random network sees its whole field).
    from napari_mscgm import load_model

    model = _blended(load_model("beads-sr2x", device="cpu"), floor=1e-3, max_weight=0.8)
    image = (_smooth((160, 144)) * 500 + rng.poisson(50, (160, 144))).astype(np.float32)
    whole = restore(image, model, steps=2, seed=3, tile_size=None, consistency=False)
    tiled = restore(image, model, steps=2, seed=3, tile_size=64, overlap=32, consistency=False)
    span = float(whole.max() - whole.min())
    psnr = 10 * np.log10(span**2 / np.mean((tiled.astype(np.float64) - whole) ** 2))
    assert psnr >= 40.0


def test_the_fit_keeps_no_blend_unless_one_scores_better(tiny_model, rng):
    pairs = []
    for i in range(2):
        high = _smooth() * 1000
        low = rng.poisson(high / 20).astype(np.float32)
        pairs.append((f"p{i}", low[::2, ::2], high))
    blend, rows = fit_observation_blend(tiny_model, pairs, floors=(1e-3, 1e-1),
                                        max_weights=(1.0,), fitted_on="test")  # fmt: skip
    assert [(r["floor"], r["max_weight"]) for r in rows] == [(0.0, 0.0), (1e-3, 1.0), (1e-1, 1.0)]
    best = max(rows, key=lambda r: r["psnr"])
    assert (blend is None) == (best["floor"] == 0.0)
    if blend is not None:
        assert (blend.floor, blend.max_weight, blend.fitted_on) == (best["floor"], 1.0, "test")
    assert tiny_model.config.observation_blend is None  # the model is left as it was


def test_a_blend_needs_a_level_beyond_the_scale():
    from conftest import tiny_config

    config = tiny_config(scale=2, levels=1)
    with pytest.raises(ValueError, match="more wavelet levels"):
        config.model_validate(
            {**config.model_dump(), "observation_blend": {"floor": 1e-3, "max_weight": 1}}
        )
