import numpy as np
import pytest

from napari_mscgm.errors import InputError
from napari_mscgm.io import read_image
from napari_mscgm.samples import (
    SAMPLE_SEEDS,
    SAMPLE_SHAPE,
    list_samples,
    load_sample,
    sample_path,
)
from napari_mscgm.simulate import preset_config, simulate_pair


def test_every_sample_is_small_and_has_pixel_sizes():
    assert list_samples() == ["beads_high", "beads_low", "cells_high", "cells_low"]
    for name in list_samples():
        path = sample_path(name)
        assert path.is_file() and path.stat().st_size < 400_000
        image = read_image(path)
        expected = 0.65 if name.endswith("low") else 0.325
        assert image.pixel_size_um[1:] == pytest.approx((expected, expected))
    with pytest.raises(InputError, match="unknown sample"):
        sample_path("nope")


@pytest.mark.parametrize("scene", ["beads", "cells"])
def test_samples_are_the_seeded_simulation(scene):
    seed, peak = SAMPLE_SEEDS[scene]
    pair = simulate_pair(
        preset_config(scene, input_peak_photons=(peak, peak)), shape=SAMPLE_SHAPE, rng=seed
    )
    low, low_px = load_sample(f"{scene}_low")
    high, high_px = load_sample(f"{scene}_high")
    assert np.array_equal(low, pair.low) and np.array_equal(high, pair.high)
    assert low_px == (pair.low_pixel_size_um,) * 2 and high_px == (pair.high_pixel_size_um,) * 2
