"""The physics consistency check, the noise estimate and the wrong-model guard."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_mscgm import check_consistency, load_model, restore
from napari_mscgm.core.noise_model import fit_poisson_gaussian
from napari_mscgm.core.optics import airy_otf, resolution_scaling_kernel
from napari_mscgm.io import read_run_metadata
from napari_mscgm.restoration.consistency import ConsistencyCheck
from napari_mscgm.simulate import preset_config, simulate_pair

KEYS = {"rsp", "rse", "inconsistent_fraction", "verdict"}


def test_the_kernel_turns_the_target_otf_into_the_input_otf():
    px, lam = 0.325, 0.52
    kernel = resolution_scaling_kernel(input_na=0.4, target_na=0.75, wavelength_um=lam,
                                       pixel_size_um=px, size=65)  # fmt: skip
    assert kernel.sum() == pytest.approx(1.0)
    spectrum = np.fft.fft2(np.fft.ifftshift(kernel)).real
    f = np.fft.fftfreq(65, d=px)
    radius = np.hypot(f[:, None], f[None, :])
    inside = radius < 0.9 * 2 * 0.4 / lam
    product = spectrum * airy_otf(radius, na=0.75, wavelength_um=lam)
    np.testing.assert_allclose(product[inside], airy_otf(radius, na=0.4, wavelength_um=lam)[inside],
                               atol=0.02)  # fmt: skip
    # A denoising model (one objective) degrades by the identity.
    assert resolution_scaling_kernel(input_na=0.75, target_na=0.75, wavelength_um=lam,
                                     pixel_size_um=px).shape == (1, 1)  # fmt: skip


def test_noise_model_recovers_a_known_camera(rng):
    # Gain 2 ADU/e, read noise 1.5 e, offset 100 ADU: variance = 2 · mean + (9 − 200).
    electrons = np.linspace(5, 500, 256)[None, :] * np.ones((256, 1))
    adu = 2.0 * (rng.poisson(electrons) + rng.normal(0, 1.5, electrons.shape)) + 100
    noise = fit_poisson_gaussian(adu)
    assert noise.a == pytest.approx(2.0, rel=0.1)
    assert noise.b == pytest.approx(-191.0, abs=40)
    for flat in (np.zeros((8, 8)), np.ones((3, 3)), np.ones((1, 1))):
        fitted = fit_poisson_gaussian(flat)
        assert math.isfinite(fitted.a) and math.isfinite(fitted.b)


@pytest.mark.parametrize("preset", ["cells", "nuclei", "filaments", "tissue"])
def test_the_true_image_degraded_is_consistent_with_its_input(preset):
    # Restoring the target exactly: the degradation reproduces the simulator's physics, so
    # at high light (little noise to hide a mismatch) RSP is close to 1.
    for photons, least_rsp in ((3000, 0.99), (300, 0.95)):
        config = preset_config(preset, input_peak_photons=(photons, photons))
        pair = simulate_pair(config, shape=192, rng=7)
        plane = ConsistencyCheck(config.physics(), 2).plane(pair.low, pair.high)
        assert plane.verdict == "consistent"
        assert plane.rsp > least_rsp
        assert plane.inconsistent_fraction < 0.01


@pytest.fixture(scope="module")
def bundled():
    return {name: load_model(name, device="cpu") for name in ("beads-sr2x", "fluo-sr2x")}


def test_wrong_models_are_flagged_and_right_ones_are_not(bundled):
    # A small held-out set at 100 to 1000 photons (the check cannot see much below that).
    right = [("beads-sr2x", "beads"), ("fluo-sr2x", "cells"), ("fluo-sr2x", "filaments")]
    wrong = [("beads-sr2x", "cells"), ("beads-sr2x", "filaments")]
    verdicts: dict[str, list[bool]] = {"right": [], "wrong": []}
    for kind, pairings in (("right", right), ("wrong", wrong)):
        for name, preset in pairings:
            for seed, photons in enumerate((100, 300, 1000, 150, 600)):
                config = preset_config(preset, input_peak_photons=(photons, photons))
                pair = simulate_pair(config, shape=128, rng=4200 + seed)
                _, meta = restore(pair.low, bundled[name], return_metadata=True)
                verdicts[kind].append(meta["consistency"]["verdict"] == "inconsistent")
    assert np.mean(verdicts["wrong"]) >= 0.9, verdicts
    assert np.mean(verdicts["right"]) <= 0.1, verdicts


def test_scores_are_finite_on_constant_zero_and_tiny_images(tiny_model):
    for image in (np.zeros((16, 16)), np.full((8, 8), 7.0), np.zeros((1, 1)),
                  np.arange(6.0).reshape(2, 3), np.ones((2, 5, 5))):  # fmt: skip
        _, meta = restore(image, tiny_model, steps=1, return_metadata=True)
        record = meta["consistency"]
        assert KEYS <= set(record)
        assert all(math.isfinite(record[k]) for k in ("rsp", "rse", "inconsistent_fraction"))
        json.dumps(record, allow_nan=False)  # no NaN reaches the metadata


def test_stacks_get_a_summary_per_plane_and_files_carry_it(tmp_path, tiny_model, rng):
    stack = rng.random((3, 24, 24)) * 100
    for name in ("r.ome.tif", "r.zarr"):
        restore(stack, tiny_model, axes="ZYX", steps=1, out=tmp_path / name, consistency_map=True)
        record = read_run_metadata(tmp_path / name)["consistency"]
        assert KEYS <= set(record) and [p["index"] for p in record["planes"]] == [
            [0, 0, 0], [0, 0, 1], [0, 0, 2],
        ]  # fmt: skip
        map_file = tmp_path / name.replace("r.", "r_consistency.")
        assert read_run_metadata(map_file)["content"] == "consistency"
    result = restore(stack, tiny_model, axes="ZYX", steps=1)
    checked = check_consistency(stack, result, tiny_model, axes="ZYX", with_map=True)
    assert checked.map.shape == stack.shape and checked.map.dtype == np.float32
    assert checked.record["verdict"] in ("consistent", "inconsistent")


def test_lazy_results_say_they_were_not_checked(tiny_model, rng):
    import dask.array as da

    image = da.from_array(rng.random((32, 32)), chunks=16)
    _, meta = restore(image, tiny_model, steps=1, return_metadata=True)
    assert meta["consistency"]["verdict"] == "not checked"
    _, meta = restore(np.asarray(image), tiny_model, steps=1, consistency=False,
                      return_metadata=True)  # fmt: skip
    assert "consistency" not in meta


def test_cli_warns_on_an_inconsistent_result_and_writes_the_map(tmp_path, capsys):
    from napari_mscgm.cli import main
    from napari_mscgm.samples import sample_path

    out = tmp_path / "cells.ome.tif"
    args = ["restore", str(sample_path("cells_low")), "-o", str(out), "--model", "beads-sr2x"]
    assert main([*args, "--consistency-map"]) == 0  # a warning, not an error
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inconsistent with the input" in err[0] and "another model" in err[0]
    assert (tmp_path / "cells_consistency.ome.tif").is_file()
    assert read_run_metadata(out)["consistency"]["verdict"] == "inconsistent"
    # The right model: no warning. An existing map is not replaced without --overwrite.
    good = tmp_path / "good.ome.tif"
    right = ["restore", str(sample_path("cells_low")), "-o", str(good), "--model", "fluo-sr2x"]
    assert main(right) == 0
    assert "inconsistent" not in capsys.readouterr().err
    assert main([*args, "--consistency-map"]) == 2
    assert "already exists" in capsys.readouterr().err
