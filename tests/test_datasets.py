import numpy as np
import pytest

from napari_mscgm.cli import main
from napari_mscgm.errors import InputError
from napari_mscgm.io import read_image, write_ome_tiff
from napari_mscgm.training.datasets import (
    PairPool,
    folder_pairs,
    folder_pool,
    read_pairs,
)
from napari_mscgm.training.simulated import simulated_pool


def _write(path, data, px):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_ome_tiff(path, data.astype(np.float32), axes="YX", pixel_size_um=(None, px, px))


def test_crops_stay_registered_under_flips_and_rotations(rng):
    lows = [rng.random((20, 24)).astype(np.float32) for _ in range(3)]
    # The target is the input on a 2x finer grid, so 2x2 block means give the input back.
    highs = [np.repeat(np.repeat(lo, 2, 0), 2, 1) for lo in lows]
    pool = PairPool(lows, highs, 2)
    low, high = pool.sample(16, crop=16, rng=rng)
    assert low.shape == (16, 1, 8, 8) and high.shape == (16, 1, 16, 16)
    block_mean = high.reshape(16, 1, 8, 2, 8, 2).mean(dim=(3, 5))
    assert np.allclose(block_mean.numpy(), low.numpy())
    # Augmentation really happens: some crop is not an axis-aligned sub-array of its source.
    sources = [lo for lo in lows]

    def found(c):
        return any(
            np.array_equal(c, s[y : y + 8, x : x + 8])
            for s in sources
            for y in range(13)
            for x in range(17)
        )

    assert not all(found(c[0].numpy()) for c in low)
    with pytest.raises(InputError):
        pool.sample(1, crop=15, rng=rng)
    with pytest.raises(InputError):
        PairPool(lows, [h[:-2] for h in highs], 2)


def test_split_holds_out_the_last_pairs(rng):
    pool = PairPool([np.zeros((4, 4), np.float32)] * 5, [np.zeros((8, 8), np.float32)] * 5, 2)
    train, val = pool.split(2)
    assert len(train) == 3 and len(val) == 2 and val.names == ["0003", "0004"]


def test_simulated_pool_mixes_presets():
    pool = simulated_pool("beads+filaments", n=3, shape=32, seed=5)
    assert len(pool) == 3 and pool.scale == 2
    assert [n.split("-")[0] for n in pool.names] == ["beads", "filaments", "beads"]
    assert pool.lows[0].shape == (16, 16) and pool.highs[0].shape == (32, 32)


def test_folder_pairs_are_matched_by_name_and_checked(tmp_path, rng):
    root = tmp_path / "data"
    for name in ("a", "b"):
        _write(root / "low" / f"{name}.ome.tif", rng.random((8, 8)), 0.65)
        _write(root / "high" / f"{name}.tif", rng.random((16, 16)), 0.325)
    assert [n for n, _, _ in folder_pairs(root)] == ["a", "b"]
    pool = folder_pool(root, scale=2)
    assert pool.names == ["a", "b"] and pool.highs[0].shape == (16, 16)
    assert read_pairs(root, scale=2)[0][1].shape == (8, 8)
    with pytest.raises(InputError, match="not 4×"):
        folder_pool(root, scale=4)
    # wrong pixel size: shapes match a 2x pair but the metadata say otherwise
    _write(root / "high" / "b.tif", rng.random((16, 16)), 0.65)
    with pytest.raises(InputError, match="pixel sizes"):
        folder_pool(root, scale=2)
    _write(root / "low" / "c.tif", rng.random((8, 8)), 0.65)
    with pytest.raises(InputError, match=r"without a partner.*c"):
        folder_pairs(root)
    with pytest.raises(InputError, match="low/"):
        folder_pairs(tmp_path / "nothing")


def test_simulate_cli_writes_pairs_with_pixel_sizes(tmp_path):
    out = tmp_path / "sim"
    assert main(["simulate", "--preset", "beads", "--n", "2", "--shape", "32", "-o", str(out)]) == 0
    low = read_image(out / "low" / "beads_0_0000.ome.tif")
    high = read_image(out / "high" / "beads_0_0000.ome.tif")
    assert low.pixel_size_um[1:] == (0.65, 0.65)
    assert high.pixel_size_um[1:] == (0.325, 0.325)
    assert low.data.shape[-2:] == (16, 16) and high.data.shape[-2:] == (32, 32)
    assert len(folder_pool(out, scale=2)) == 2
    # existing files are not replaced silently; bad presets are a usage error
    assert main(["simulate", "--preset", "beads", "--n", "1", "--shape", "32", "-o", str(out)]) == 2
    assert main(["simulate", "--preset", "nope", "--n", "1", "-o", str(tmp_path / "x")]) == 2


@pytest.mark.parametrize(
    ("options", "input_na", "low_size", "photons"),
    [
        (["--photons", "20", "60"], 0.4, 16, [20.0, 60.0]),
        (["--input-na", "0.3"], 0.3, 16, [30.0, 1000.0]),
        (["--same-objective", "--photons", "5", "5"], 0.75, 32, [5.0, 5.0]),
    ],
)
def test_simulate_cli_sets_photons_and_optics(tmp_path, options, input_na, low_size, photons):
    from napari_mscgm.io.read import read_run_metadata

    out = tmp_path / "sim"
    argv = ["simulate", "--preset", "nuclei", "--n", "1", "--shape", "32", "-o", str(out)]
    assert main(argv + options) == 0
    low = out / "low" / "nuclei_0_0000.ome.tif"
    meta = read_run_metadata(low)
    assert meta["input_na"] == input_na and meta["config"]["input_peak_photons"] == photons
    assert photons[0] <= meta["input_peak_photons"] <= photons[1]
    assert read_image(low).data.shape[-1] == low_size


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--photons", "60", "20"], "low <= high"),
        (["--input-na", "2.5"], "input.na"),
        (["--photons", "0", "20"], "input_peak_photons"),
    ],
)
def test_simulate_cli_refuses_bad_settings_in_one_line(tmp_path, capsys, options, message):
    argv = [
        "simulate",
        "--preset",
        "nuclei",
        "--n",
        "1",
        "--shape",
        "32",
        "-o",
        str(tmp_path / "s"),
    ]
    assert main(argv + options) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()
