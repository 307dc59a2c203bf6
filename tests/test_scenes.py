"""The scene library: every structure class, its contract and a check of what it draws."""

from __future__ import annotations

import typing

import numpy as np
import pytest
from scipy import ndimage

from napari_mscgm.config.simulation import SceneName
from napari_mscgm.simulate import PRESETS, SCENES, preset_config, simulate_pair
from napari_mscgm.simulate.scenes import (
    MIXED_SCENES,
    actin,
    composite,
    composite_layers,
    er,
    filaments,
    membranes,
    microtubules,
    mitochondria,
    mixed,
    nuclei,
    puncta,
    sparse,
    tissue,
)

PX = 0.08125  # the default fine grid: target pixel / 4
SHAPE = (256, 256)
NEW_CLASSES = (
    "nuclei",
    "actin",
    "microtubules",
    "er",
    "mitochondria",
    "puncta",
    "membranes",
    "tissue",
    "sparse",
    "composite",
)


def components(image: np.ndarray) -> np.ndarray:
    """Pixel counts of the 8-connected components of the dye."""
    labels, _ = ndimage.label(image > 0, structure=np.ones((3, 3)))
    return np.bincount(labels.ravel())[1:]


def enclosed_holes(image: np.ndarray) -> int:
    """Dye-free regions that do not touch the border: the loops of a network."""
    labels, n = ndimage.label(image == 0)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return n - len(set(np.unique(edge)) - {0})


def orientation_coherence(image: np.ndarray) -> float:
    """Mean local coherence of the gradient structure tensor (~3 µm windows) where there
    is signal: near 1 for parallel lines, low for an isotropic meshwork."""
    gy, gx = np.gradient(ndimage.gaussian_filter(image, 1.0))
    jyy, jxx, jxy = (ndimage.gaussian_filter(a, 12.0) for a in (gy * gy, gx * gx, gx * gy))
    trace = jxx + jyy
    coherence = np.hypot(jxx - jyy, 2 * jxy) / (trace + 1e-30)
    return float(coherence[trace > 0.05 * trace.max()].mean())


# ------------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("name", sorted(SCENES))
def test_scene_is_a_deterministic_normalised_dye_map(name):
    density = SCENES[name](SHAPE, pixel_size_um=PX, rng=np.random.default_rng(11))
    assert density.shape == SHAPE and density.dtype == np.float64
    assert np.isfinite(density).all() and density.min() >= 0
    assert density.max() == 1.0  # exactly: every generator divides by its peak
    again = SCENES[name](SHAPE, pixel_size_um=PX, rng=11)
    np.testing.assert_array_equal(density, again)
    other = SCENES[name](SHAPE, pixel_size_um=PX, rng=12)
    assert not np.array_equal(density, other)


def test_registry_config_and_presets_agree():
    assert set(typing.get_args(SceneName)) == set(SCENES)
    assert set(MIXED_SCENES) == set(SCENES) - {"composite", "mixed"}
    for name in NEW_CLASSES:
        assert PRESETS[name] is preset_config(name)
        assert PRESETS[name].scene == name


@pytest.mark.parametrize("name", NEW_CLASSES)
def test_preset_simulates_a_pair(name):
    pair = simulate_pair(preset_config(name), shape=64, rng=0)
    assert pair.high.shape == (64, 64) and pair.low.shape == (32, 32)
    assert np.isfinite(pair.high).all() and np.isfinite(pair.low).all()


def test_mixed_draws_every_concrete_class():
    picked = {MIXED_SCENES[np.random.default_rng(s).integers(len(MIXED_SCENES))] for s in range(60)}
    assert picked == set(MIXED_SCENES)
    for seed in range(3):  # `mixed` hands its (already advanced) rng to the chosen class
        rng = np.random.default_rng(seed)
        name = MIXED_SCENES[rng.integers(len(MIXED_SCENES))]
        np.testing.assert_array_equal(
            mixed((96, 96), pixel_size_um=PX, rng=seed),
            SCENES[name]((96, 96), pixel_size_um=PX, rng=rng),
        )


# --------------------------------------------------------------------------- what each draws


def test_smooth_nuclei_lack_the_texture_of_textured_ones():
    def interior_band_energy(image):
        inner = ndimage.binary_erosion(image > 0, iterations=12)  # 1 µm inside the edges
        band = ndimage.gaussian_filter(image, 1) - ndimage.gaussian_filter(image, 6)
        return (band[inner] ** 2).mean() / (image[inner] ** 2).mean()

    shape = (512, 512)
    smooth = nuclei(shape, pixel_size_um=PX, rng=0, style="smooth")
    textured = nuclei(shape, pixel_size_um=PX, rng=0, style="textured")
    assert interior_band_energy(textured) > 10 * interior_band_energy(smooth)
    # Nucleus-to-nucleus brightness: some nuclei are several times dimmer than others.
    field = nuclei((1024, 1024), pixel_size_um=PX, rng=0, style="smooth")
    labels, n = ndimage.label(field > 0)
    means = ndimage.mean(field, labels, np.arange(1, n + 1))
    assert n >= 5 and means.max() > 3 * means.min()


def test_actin_fibres_are_parallel_and_the_meshwork_is_not():
    shape = (512, 512)
    fibres = actin(shape, pixel_size_um=PX, rng=0, meshwork_fraction=0.0)
    meshwork = actin(shape, pixel_size_um=PX, rng=0, meshwork_fraction=1.0)
    assert orientation_coherence(fibres) > 0.6
    assert orientation_coherence(meshwork) < 0.35


def test_microtubules_converge_on_centrosomes():
    """Asters concentrate dye around their centres; random filaments do not."""

    def concentration(image):
        blurred = ndimage.gaussian_filter(image, 1.0 / PX)
        return blurred.max() / blurred[image > 0].mean()

    shape = (1024, 1024)
    for seed in range(2):
        asters = microtubules(shape, pixel_size_um=PX, rng=seed)
        assert concentration(asters) > 4
        assert concentration(asters) > 1.5 * concentration(
            filaments(shape, pixel_size_um=PX, rng=seed)
        )


def test_er_is_a_connected_polygonal_network():
    image = er((512, 512), pixel_size_um=PX, rng=1)
    assert enclosed_holes(image) > 150  # many small closed polygons (~1 µm)
    labels, _ = ndimage.label(image > 0, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    rows, cols = np.nonzero(labels == sizes.argmax())
    assert sizes.max() > 0.5 * sizes.sum()  # one network holds most of the tubules
    assert np.ptp(rows) > 0.4 * image.shape[0] and np.ptp(cols) > 0.4 * image.shape[1]
    # Thin tubules, not a filled area.
    assert np.mean(image > 0) < 0.3


def test_mitochondria_fragment_with_fragmentation():
    shape = (1024, 1024)
    networks = components(mitochondria(shape, pixel_size_um=PX, rng=0, fragmentation=0.0))
    fragments = components(mitochondria(shape, pixel_size_um=PX, rng=0, fragmentation=1.0))
    assert len(fragments) > 3 * len(networks)
    assert np.median(fragments) < 0.5 * np.median(networks)


def test_puncta_are_mostly_isolated_small_blobs():
    sizes = components(puncta((512, 512), pixel_size_um=PX, rng=0))
    assert len(sizes) > 50
    assert np.median(sizes) <= 10  # a 300 nm vesicle covers ~11 fine pixels
    assert np.mean(sizes < 40) > 0.9


def test_membranes_are_thin_contours_without_interior():
    image = membranes((512, 512), pixel_size_um=PX, rng=0)
    assert np.mean(image > 0) < 0.1
    # Nothing survives an opening with a 0.4 µm square: all dye is on thin lines.
    opened = ndimage.binary_opening(image > 0, np.ones((5, 5)))
    assert image[opened].sum() < 0.05 * image.sum()
    assert enclosed_holes(image) >= 3  # closed cell outlines


def test_tissue_fills_the_field():
    for seed in range(3):
        image = tissue(SHAPE, pixel_size_um=PX, rng=seed)
        assert np.mean(image > 0.02 * np.percentile(image, 99)) > 0.98


def test_sparse_fields_are_mostly_empty_and_can_be_blank():
    image = sparse((512, 512), pixel_size_um=PX, rng=0, empty_probability=0.0)
    assert 0 < np.mean(image > 0) < 0.01
    assert len(components(image)) >= 2
    for seed in range(5):
        blank = sparse(SHAPE, pixel_size_um=PX, rng=seed, empty_probability=1.0)
        assert blank.shape == SHAPE and blank.dtype == np.float64 and not blank.any()
    empties = sum(not sparse((32, 32), pixel_size_um=PX, rng=s).any() for s in range(200))
    assert 5 <= empties <= 40  # the default empty_probability of 0.1


def test_composite_overlays_two_or_three_classes():
    for seed in range(4):
        layers = composite_layers(SHAPE, pixel_size_um=PX, rng=seed)
        names = [name for name, _, _ in layers]
        assert 2 <= len(names) <= 3 and len(set(names)) == len(names)
        assert set(names) <= set(MIXED_SCENES)
        expected = sum(level * layer for _, level, layer in layers)
        expected = expected / expected.max()
        np.testing.assert_allclose(composite(SHAPE, pixel_size_um=PX, rng=seed), expected)
    chosen = composite_layers(SHAPE, pixel_size_um=PX, rng=0, classes=("beads", "membranes"))
    assert sorted(name for name, _, _ in chosen) == ["beads", "membranes"]
