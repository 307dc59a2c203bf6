"""Regenerate the bundled samples in src/napari_mscgm/samples/ (fixed seeds).

python training/make_samples.py
"""

from pathlib import Path

from napari_mscgm.io import write_ome_tiff
from napari_mscgm.samples import SAMPLE_SEEDS, SAMPLE_SHAPE
from napari_mscgm.simulate import preset_config, simulate_pair

OUT = Path(__file__).resolve().parents[1] / "src" / "napari_mscgm" / "samples"

for scene, (seed, peak) in SAMPLE_SEEDS.items():
    config = preset_config(scene, input_peak_photons=(peak, peak))
    pair = simulate_pair(config, shape=SAMPLE_SHAPE, rng=seed)
    for role, data, px in (
        ("low", pair.low, pair.low_pixel_size_um),
        ("high", pair.high, pair.high_pixel_size_um),
    ):
        meta = {"content": f"napari-mscgm sample: simulated {scene}, {role}", "seed": seed}
        meta.update(pair.metadata)
        write_ome_tiff(
            OUT / f"{scene}_{role}.ome.tif",
            data,
            axes="YX",
            pixel_size_um=(None, px, px),
            metadata=meta,
        )
        print(OUT / f"{scene}_{role}.ome.tif", data.shape, px)
