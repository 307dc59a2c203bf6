"""Validated configurations: strict, finite, one class per algorithm, one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from napari_mscgm import MSCGM, InputError, ModelConfig, RestoreOptions, restore
from napari_mscgm.config import (
    BridgeConfig,
    CARETrainConfig,
    MSCGMTrainConfig,
    RunMetadata,
    SimulationConfig,
    parse_train_config,
)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_no_config_accepts_inf_or_nan(bad):
    for make in (
        lambda: MSCGMTrainConfig(lr_d=bad),
        lambda: CARETrainConfig(weight_decay=bad),
        lambda: SimulationConfig(wavelength_um=bad),
        lambda: SimulationConfig(scene_density=bad),
        lambda: SimulationConfig(input_peak_photons=(10.0, bad)),
    ):
        with pytest.raises(ValidationError):
            make()
    with pytest.raises(InputError, match="eta must be a finite number"):
        RestoreOptions(eta=bad)


def test_recipes_are_discriminated_by_algorithm():
    assert isinstance(parse_train_config({}), MSCGMTrainConfig)
    care = parse_train_config({"algorithm": "care", "crop": 64})
    assert isinstance(care, CARETrainConfig) and list(care.stages()) == ["care"]
    with pytest.raises(InputError, match="bridge: Extra inputs"):
        parse_train_config({"algorithm": "care", "bridge": {"iterations": 1}})
    with pytest.raises(InputError, match="crop 33 must be a multiple of 32"):
        parse_train_config({"crop": 33})


def test_restore_options_validate_once_and_resolve_defaults_from_the_model():
    options = RestoreOptions(axes="zyx", device="cuda:1", pixel_size_um=(1, 0.5, 0.5))
    assert options.axes == "ZYX" and options.pixel_size_um == (1.0, 0.5, 0.5)
    assert RestoreOptions(seed=None).seed >= 0  # a drawn seed, recorded like any other
    with pytest.raises(InputError, match="not both"):
        restore(np.ones((8, 8)), "beads-sr2x", options=options, steps=3)


def test_the_steps_a_run_uses_are_recorded(tiny_model):
    # A bridge of T = 10 timesteps makes at most 10 network evaluations, whatever is asked.
    config = tiny_model.config.model_copy(
        update={"bbdp": BridgeConfig(num_timesteps=10, default_steps=3)}
    )
    model = MSCGM(ModelConfig.model_validate(config.model_dump()))
    model.load_state_dict(tiny_model.state_dict())
    _, meta = restore(np.ones((8, 8)), model, steps=50, return_metadata=True)
    assert meta["steps"] == 10
    _, meta = restore(np.ones((8, 8)), model, return_metadata=True)
    assert meta["steps"] == 3  # the model's default, defined in one place


def test_run_metadata_is_typed_and_extended_by_methods(tiny_model):
    _, meta = restore(np.ones((8, 8)), tiny_model, steps=1, return_metadata=True)
    record = RunMetadata.model_validate(meta)
    assert record.to_dict() == meta  # round trip
    std = record.for_std().to_dict()
    assert std["content"] == "std" and "content" not in meta
    sized = record.with_pixel_size((None, 0.65, 0.65)).to_dict()
    assert sized["output_pixel_size_um"] == [None, 0.325, 0.325]


def test_batch_multiplier_keeps_the_budget_of_every_recipe():
    import json
    from pathlib import Path

    from napari_mscgm.config import parse_train_config
    from napari_mscgm.config.train import with_batch_multiplier

    root = Path(__file__).resolve().parents[1] / "training"
    for name in ("fluo-sr2x", "fluo-denoise", "fluo-sr2x-care", "fluo-sr2x-loso"):
        recipe = parse_train_config(json.loads((root / f"{name}.json").read_text()))
        assert with_batch_multiplier(recipe, 1) is recipe
        gpu = with_batch_multiplier(recipe, 8)
        for stage, before in recipe.stages().items():
            after = gpu.stages()[stage]
            assert after.batch_size == 8 * before.batch_size
            assert after.iterations * after.batch_size >= before.iterations * before.batch_size
            assert after.iterations * after.batch_size < (before.iterations + 8) * before.batch_size
            assert math.isclose(after.lr, before.lr * 8**0.5)
        assert gpu.crop == recipe.crop and gpu.data == recipe.data
    with pytest.raises(InputError, match="at least 1"):
        with_batch_multiplier(recipe, 0)


def test_train_cli_batch_multiplier_reaches_the_recipe(tmp_path):
    import argparse

    from napari_mscgm.cli.train import _recipe

    args = argparse.Namespace(
        config=None,
        preset="beads",
        data=None,
        n=4,
        name=None,
        output=str(tmp_path / "m.safetensors"),
        baseline="care",
        seed=None,
        crop=None,
        bridge_iterations=None,
        generator_iterations=None,
        care_iterations=40,
        batch_multiplier=4,
        workers=3,
    )
    recipe = _recipe(args)
    assert recipe.care.iterations == 10 and recipe.care.batch_size == 32
    assert recipe.data.workers == 3
