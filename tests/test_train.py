import json

import numpy as np
import pytest
import torch
from conftest import tiny_config

from napari_mscgm import list_models, load_model, restore
from napari_mscgm.cli import main
from napari_mscgm.config import parse_train_config
from napari_mscgm.core.losses import ssim_torch
from napari_mscgm.io import write_ome_tiff
from napari_mscgm.model_io.weights import load_care
from napari_mscgm.training.checkpoint import checkpoint_path
from napari_mscgm.training.loop import StopTraining, train
from napari_mscgm.training.simulated import simulated_pool

TINY = tiny_config().networks.model_dump()


def _recipe(algorithm="mscgm", **overrides):
    base = {
        "name": "tiny-train",
        "data": {"source": "simulated", "preset": "beads", "n": 6, "shape": 64, "validation": 2},
        "crop": 32,
        "val_every": 10,
        "lr_warmup": 0,
        "checkpoint_every": 10,
    }
    if algorithm == "care":
        base.update(algorithm="care", care={"iterations": 10, "batch_size": 4, "lr": 1e-3})
        base["base_channels"] = 8
    else:
        base.update(
            networks=TINY,
            bridge={"iterations": 30, "batch_size": 8, "lr": 1e-3},
            generators={"iterations": 30, "batch_size": 4, "lr": 1e-3},
            d_base_channels=8,
            val_steps=2,
        )
    base.update(overrides)
    return parse_train_config(base)


@pytest.fixture(scope="module")
def pool():
    return simulated_pool("beads", n=6, shape=64, seed=3)


def test_ssim_torch_matches_skimage(rng):
    from skimage.metrics import structural_similarity

    a = rng.random((32, 32))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    ours = ssim_torch(torch.tensor(a)[None, None].float(), torch.tensor(b)[None, None].float())
    ref = structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    # skimage crops the borders differently; the values agree closely.
    assert float(ours) == pytest.approx(ref, abs=0.02)


def test_tiny_training_lowers_the_loss_and_writes_a_loadable_model(tmp_path, pool):
    out = tmp_path / "tiny.safetensors"
    result = train(
        _recipe(), out, pool=pool, log=tmp_path / "log.csv", progress=False, device="cpu", threads=1
    )
    for stage in ("bridge", "generators"):
        losses = [r["loss"] for r in result.history if r["stage"] == stage]
        assert len(losses) == 3 and losses[-1] < losses[0], (stage, losses)
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0] == "stage,iteration,loss,val_psnr,val_ssim,elapsed_s" and len(log) == 7
    model = load_model(out, device="cpu")
    assert model.config.training.iterations == {"bridge": 30, "generators": 30}
    assert model.config.training.wall_time_s > 0
    assert model.config.physics.input_pixel_size_um == pytest.approx(0.65)
    assert model.config.physics.target_na == 0.75
    restored = restore(np.random.default_rng(0).random((16, 16)), model, steps=2)
    assert restored.shape == (32, 32) and np.all(np.isfinite(restored))


def test_resume_continues_to_the_same_weights(tmp_path, pool):
    recipe = _recipe(
        bridge={"iterations": 6, "batch_size": 4},
        generators={"iterations": 6, "batch_size": 2},
        val_every=2,
        checkpoint_every=2,
    )
    full = tmp_path / "full.safetensors"
    train(recipe, full, pool=pool, progress=False, device="cpu", threads=1)

    class Stop(Exception):
        pass

    def interrupt(stage, iteration, total, loss):
        if stage == "generators" and iteration == 4:
            raise Stop

    part = tmp_path / "part.safetensors"
    with pytest.raises(Stop):
        train(recipe, part, pool=pool, progress=False, device="cpu", threads=1, callback=interrupt)
    assert checkpoint_path(part).is_file() and not part.exists()
    train(recipe, part, pool=pool, progress=False, device="cpu", threads=1, resume=True)
    a, b = load_model(full, device="cpu"), load_model(part, device="cpu")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    # a checkpoint of another recipe is refused
    with pytest.raises(Exception, match="different training recipe"):
        train(_recipe(), part, pool=pool, progress=False, device="cpu", threads=1, resume=True)


def test_stop_keeps_the_model_so_far_and_a_checkpoint_to_resume(tmp_path, pool):
    recipe = _recipe(
        bridge={"iterations": 4, "batch_size": 4},
        generators={"iterations": 6, "batch_size": 2},
        val_every=2,
        checkpoint_every=4,
    )
    full = tmp_path / "full.safetensors"
    train(recipe, full, pool=pool, progress=False, device="cpu", threads=1)

    def stop_at_3(stage, iteration, total):
        if stage == "generators" and iteration == 3:
            raise StopTraining

    part = tmp_path / "part.safetensors"
    result = train(recipe, part, pool=pool, progress=False, device="cpu", threads=1,
                   step_callback=stop_at_3)  # fmt: skip
    assert result.stopped and result.iterations == {"bridge": 4, "generators": 3}
    stopped = load_model(part, device="cpu")
    assert stopped.config.training.iterations == {"bridge": 4, "generators": 3}
    # the checkpoint written at the stop continues to the weights of the uninterrupted run
    finished = train(recipe, part, pool=pool, progress=False, device="cpu", threads=1, resume=True)
    assert not finished.stopped
    a, b = load_model(full, device="cpu"), load_model(part, device="cpu")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_care_baseline_trains_and_loads(tmp_path, pool):
    out = tmp_path / "care.safetensors"
    result = train(_recipe("care"), out, pool=pool, progress=False, device="cpu", threads=1)
    assert result.iterations == {"care": 10}
    care = load_care(out)
    prediction = care.predict(pool.lows[0] * 100 + 7)
    assert prediction.shape == pool.highs[0].shape and prediction.dtype == np.float32
    assert care.config.training.iterations == {"care": 10}


def test_fine_tuning_a_bundled_model_on_folder_pairs(tmp_path, pool):
    bundled = list_models()[0]
    data = tmp_path / "pairs"
    (data / "low").mkdir(parents=True)
    (data / "high").mkdir()
    for i in range(3):
        write_ome_tiff(
            data / "low" / f"p{i}.tif",
            pool.lows[i] * 1000,
            axes="YX",
            pixel_size_um=(None, 0.65, 0.65),
        )
        write_ome_tiff(
            data / "high" / f"p{i}.tif",
            pool.highs[i] * 50,
            axes="YX",
            pixel_size_um=(None, 0.325, 0.325),
        )
    out = tmp_path / "tuned.safetensors"
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--init",
            bundled,
            "-o",
            str(out),
            "--crop",
            "32",
            "--bridge-iterations",
            "2",
            "--generator-iterations",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    base, tuned = load_model(bundled, device="cpu"), load_model(out, device="cpu")
    assert tuned.config.networks == base.config.networks
    assert tuned.config.physics == base.config.physics
    assert tuned.config.name == "tuned"
    assert "fine-tuned from" in tuned.config.training.data
    changed = [
        not torch.equal(x, y)
        for x, y in zip(base.state_dict().values(), tuned.state_dict().values(), strict=True)
    ]
    assert any(changed)
    assert (tmp_path / "tuned.csv").is_file()


def test_train_cli_reports_bad_recipes(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"crop": 33}))
    assert main(["train", "--config", str(bad), "-o", str(tmp_path / "m.safetensors")]) == 2
    assert main(["train", "-o", str(tmp_path / "m.safetensors")]) == 2
    assert main(["train", "--preset", "beads", "-o", str(tmp_path / "m.pt")]) == 2
