"""The physical simulator: optics, camera, scenes, configuration and paired output."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.signal import fftconvolve

from napari_mscgm import simulate as sim
from napari_mscgm.errors import InputError
from napari_mscgm.simulate import (
    PRESETS,
    SCENES,
    BeadLayout,
    Camera,
    Microscope,
    SimulationConfig,
    airy_psf,
    bead_positions,
    beads,
    camera_noise,
    gaussian_psf,
    integrate_pixels,
    preset_config,
    render_beads,
    simulate_pair,
    simulate_pairs,
)
from napari_mscgm.simulate.scenes._canvas import persistent_walks

WAVELENGTH = 0.52
# Scale 4: a 5×/0.2 input on the same camera (1.3 µm pixels) against the 20×/0.75 target.
SCALE4 = SimulationConfig(input=Microscope(na=0.2, magnification=5), scene="beads")


def _fwhm(config, na):
    """The FWHM of a config's PSF model at this NA."""
    return sim.fwhm_um(na=na, wavelength_um=config.wavelength_um, psf=config.psf)


def measured_fwhm(profile: np.ndarray, pixel_size_um: float) -> float:
    """FWHM of a single-peaked profile, by linear interpolation at half maximum."""
    half = profile.max() / 2
    above = np.flatnonzero(profile >= half)
    lo, hi = above[0], above[-1]
    left = lo - 1 + (half - profile[lo - 1]) / (profile[lo] - profile[lo - 1])
    right = hi + (profile[hi] - half) / (profile[hi] - profile[hi + 1])
    return (right - left) * pixel_size_um


# ------------------------------------------------------------------------------------ optics


@pytest.mark.parametrize(("na", "expected_um"), [(0.4, 0.66), (0.75, 0.35)])
def test_airy_fwhm_is_051_lambda_over_na(na, expected_um):
    px = 0.004
    psf = airy_psf(na=na, wavelength_um=WAVELENGTH, pixel_size_um=px, size=401)
    fwhm = measured_fwhm(psf[200], px)
    assert fwhm == pytest.approx(0.51 * WAVELENGTH / na, rel=0.05)
    assert fwhm == pytest.approx(expected_um, rel=0.05)  # the reference page's numbers
    assert fwhm == pytest.approx(sim.fwhm_um(na=na, wavelength_um=WAVELENGTH), rel=0.01)


def test_default_objectives_fwhm_in_config():
    config = SimulationConfig()
    assert _fwhm(config, config.input.na) == pytest.approx(0.51 * WAVELENGTH / 0.4, rel=0.05)
    assert _fwhm(config, config.target.na) == pytest.approx(0.51 * WAVELENGTH / 0.75, rel=0.05)


def test_gaussian_psf_approximates_airy_width():
    px = 0.004
    psf = gaussian_psf(na=0.75, wavelength_um=WAVELENGTH, pixel_size_um=px, size=401)
    sigma = 0.21 * WAVELENGTH / 0.75
    assert measured_fwhm(psf[200], px) == pytest.approx(2.3548 * sigma, rel=0.01)
    assert measured_fwhm(psf[200], px) == pytest.approx(0.51 * WAVELENGTH / 0.75, rel=0.05)


@pytest.mark.parametrize("psf_model", [airy_psf, gaussian_psf])
@pytest.mark.parametrize("px", [0.08125, 0.325, 0.65])
def test_psf_normalised_centred_symmetric(psf_model, px):
    psf = psf_model(na=0.4, wavelength_um=WAVELENGTH, pixel_size_um=px)
    assert psf.shape[0] == psf.shape[1] and psf.shape[0] % 2 == 1
    assert psf.sum() == pytest.approx(1.0, abs=1e-12)
    c = psf.shape[0] // 2
    assert np.unravel_index(psf.argmax(), psf.shape) == (c, c)
    np.testing.assert_allclose(psf, psf[::-1, ::-1], atol=1e-15)
    np.testing.assert_allclose(psf, psf.T, atol=1e-15)
    # Default size: a radius of at least 4 λ/NA.
    assert c * px >= 4 * WAVELENGTH / 0.4


def test_supersampling_makes_coarse_pixels_accurate():
    # Reference: a finely point-sampled Airy summed into 0.65 µm pixels.
    fine = airy_psf(na=0.4, wavelength_um=WAVELENGTH, pixel_size_um=0.05, size=117, supersample=1)
    reference = integrate_pixels(fine, 13)
    reference /= reference.sum()
    coarse = airy_psf(na=0.4, wavelength_um=WAVELENGTH, pixel_size_um=0.65, size=9)
    assert np.abs(coarse - reference).max() < 0.005 * reference.max()
    # Point sampling at 0.65 µm would overstate the peak by tens of percent.
    point = airy_psf(na=0.4, wavelength_um=WAVELENGTH, pixel_size_um=0.65, size=9, supersample=1)
    assert point.max() > 1.2 * reference.max()


def test_psf_rejects_bad_arguments():
    with pytest.raises(ValueError, match="odd"):
        airy_psf(na=0.4, wavelength_um=WAVELENGTH, pixel_size_um=0.1, size=10)
    with pytest.raises(ValueError, match="na"):
        gaussian_psf(na=-0.4, wavelength_um=WAVELENGTH, pixel_size_um=0.1)


def test_close_pair_resolved_by_target_optics_only():
    """A separation between the two FWHMs dips between the beads only with the target PSF."""
    px, n = 0.02, 201
    config = SimulationConfig()
    separation = 0.5 * (_fwhm(config, config.target.na) + _fwhm(config, config.input.na))
    half = round(separation / px / 2)
    pair = np.zeros((n, n))
    pair[n // 2, n // 2 - half] = pair[n // 2, n // 2 + half] = 1
    ratios = {}
    for na in (0.4, 0.75):
        row = fftconvolve(pair, airy_psf(na=na, wavelength_um=WAVELENGTH, pixel_size_um=px), "same")
        row = row[n // 2]
        ratios[na] = row[n // 2] / row[n // 2 - half]  # midpoint vs bead position
    assert ratios[0.75] < 0.8  # resolved: a clear dip
    assert ratios[0.4] > 1.0  # unresolved: one blob, brightest in the middle


# ------------------------------------------------------------------------------------ camera


@pytest.mark.parametrize(
    "params",
    [
        dict(qe=0.8, read_noise_e=1.5, gain_adu_per_e=2.0, offset_adu=100.0, dark_e=0.0),
        dict(qe=0.95, read_noise_e=2.0, gain_adu_per_e=0.5, offset_adu=50.0, dark_e=3.0),
    ],
)
@pytest.mark.parametrize("photons", [5.0, 200.0])
def test_camera_mean_and_variance(params, photons):
    rng = np.random.default_rng(0)
    adu = camera_noise(np.full(400_000, photons), rng=rng, bit_depth=16, **params)
    signal_e = params["qe"] * photons + params["dark_e"]
    mean = params["gain_adu_per_e"] * signal_e + params["offset_adu"]
    var = params["gain_adu_per_e"] ** 2 * (signal_e + params["read_noise_e"] ** 2) + 1 / 12
    assert adu.mean() == pytest.approx(mean, rel=0.01)
    assert adu.var() == pytest.approx(var, rel=0.03)
    np.testing.assert_array_equal(adu, np.rint(adu))  # whole ADU


def test_camera_shot_noise_is_poisson_not_gaussian():
    # At 2 photons the Poisson electrons are strongly skewed; read noise 0 keeps them visible.
    adu = camera_noise(
        np.full(200_000, 2.0),
        rng=1,
        qe=1.0,
        read_noise_e=0.0,
        gain_adu_per_e=1.0,
        offset_adu=0.0,
        bit_depth=16,
    )
    values, counts = np.unique(adu, return_counts=True)
    assert values.min() == 0 and np.all(values == np.rint(values))
    expected = [math.exp(-2) * 2**k / math.factorial(k) for k in range(4)]
    np.testing.assert_allclose(counts[:4] / adu.size, expected, rtol=0.03)


def test_camera_clips_to_bit_depth():
    photons = np.array([0.0] * 5000 + [1e6] * 5000)
    adu = camera_noise(
        photons,
        rng=2,
        qe=0.9,
        read_noise_e=20.0,
        gain_adu_per_e=1.0,
        offset_adu=0.0,
        bit_depth=8,
    )
    assert adu.min() == 0 and adu.max() == 255
    assert np.all(adu[5000:] == 255)  # saturated
    assert np.mean(adu[:5000] == 0) > 0.4  # negative read noise clipped at 0


def test_camera_rejects_invalid_input():
    kwargs = dict(rng=0, qe=0.8, read_noise_e=1.0, gain_adu_per_e=1.0, offset_adu=0, bit_depth=16)
    with pytest.raises(ValueError, match="non-negative"):
        camera_noise(np.array([-1.0]), **kwargs)
    with pytest.raises(ValueError, match="qe"):
        camera_noise(np.array([1.0]), **{**kwargs, "qe": 1.5})


def test_camera_model_forwards_its_parameters():
    camera = Camera(qe=0.9, read_noise_e=1.0, gain_adu_per_e=1.5, offset_adu=90, bit_depth=12)
    photons = np.full((64, 64), 100.0)
    np.testing.assert_array_equal(
        sim.acquire(camera, photons, np.random.default_rng(3)),
        camera_noise(
            photons, rng=np.random.default_rng(3), **camera.model_dump(exclude={"pixel_size_um"})
        ),
    )


def test_integrate_pixels_sums_blocks():
    image = np.arange(48.0).reshape(6, 8)
    binned = integrate_pixels(image, 2)
    assert binned.shape == (3, 4)
    assert binned[0, 0] == image[:2, :2].sum()
    assert binned.sum() == image.sum()
    with pytest.raises(ValueError, match="divisible"):
        integrate_pixels(image, 4)
    with pytest.raises(ValueError, match="integer"):
        integrate_pixels(image, 1.5)


# ------------------------------------------------------------------------------------ scenes


@pytest.mark.parametrize("name", sorted(SCENES))
def test_scene_generators_return_peak_normalised_density(name):
    shape = (300, 260)
    density = SCENES[name](shape, pixel_size_um=0.08125, rng=np.random.default_rng(4))
    assert density.shape == shape and density.dtype == np.float64
    assert density.min() >= 0 and density.max() == pytest.approx(1.0)
    assert np.count_nonzero(density) > 100  # something was drawn
    again = SCENES[name](shape, pixel_size_um=0.08125, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(density, again)


def test_mixed_draws_each_scene_type():
    shape, px = (128, 128), 0.08125
    found = set()
    for seed in range(80):  # 12 classes: enough seeds to draw each
        rng = np.random.default_rng(seed)
        picked = sim.MIXED_SCENES[rng.integers(len(sim.MIXED_SCENES))]
        found.add(picked)
        # `mixed` hands its (already advanced) rng to the chosen generator.
        expected = SCENES[picked](shape, pixel_size_um=px, rng=rng)
        np.testing.assert_array_equal(
            sim.mixed(shape, pixel_size_um=px, rng=np.random.default_rng(seed)), expected
        )
    assert found == set(sim.MIXED_SCENES)


def test_bead_layout_has_close_pairs_between_the_fwhms():
    config = SimulationConfig(scene="beads")
    band = (_fwhm(config, config.target.na), _fwhm(config, config.input.na))
    shape, px = (1024, 1024), config.fine_pixel_size_um
    layout = bead_positions(
        shape, pixel_size_um=px, rng=np.random.default_rng(5), pair_separation_um=band
    )
    first, second = layout.positions_um[layout.pairs[:, 0]], layout.positions_um[layout.pairs[:, 1]]
    separations = np.linalg.norm(first - second, axis=1)
    in_band = (separations >= band[0]) & (separations <= band[1])
    assert in_band.all() and in_band.sum() >= 10
    # Diameters are sub-diffraction (100-200 nm).
    assert layout.diameters_um.min() >= 0.1 and layout.diameters_um.max() <= 0.2
    # The scene a pair is simulated from is exactly this layout, rendered.
    np.testing.assert_array_equal(
        beads(shape, pixel_size_um=px, rng=np.random.default_rng(5), pair_separation_um=band),
        render_beads(layout, shape, pixel_size_um=px),
    )


def test_simulated_pairs_populate_the_resolution_band():
    config = preset_config("beads")
    pair = simulate_pair(config, shape=32, rng=0)
    assert pair.metadata["pair_separation_um"] == pytest.approx(
        [_fwhm(config, config.target.na), _fwhm(config, config.input.na)]
    )
    # Even a tiny field gets at least one close pair.
    layout = bead_positions((16, 16), pixel_size_um=0.08125, rng=0)
    assert len(layout.pairs) >= 1


def test_bead_rendering_conserves_mass_and_centroid():
    px = 0.05
    # A 150 nm bead (rendered as a sphere) and a 60 nm bead (sub-pixel: a point).
    for diameter in (0.15, 0.06):
        layout = BeadLayout(
            positions_um=np.array([[1.234, 2.717]]),
            diameters_um=np.array([diameter]),
            brightness=np.array([1.0]),
            pairs=np.zeros((0, 2), int),
        )
        image = render_beads(layout, (64, 96), pixel_size_um=px)
        yy, xx = np.indices(image.shape)
        centroid = (
            ((yy + 0.5) * px * image).sum() / image.sum(),
            ((xx + 0.5) * px * image).sum() / image.sum(),
        )
        assert centroid == pytest.approx((1.234, 2.717), abs=1e-9)
    # Brightness ratios survive rendering (total dye per bead).
    layout = BeadLayout(
        np.array([[1.0, 1.0], [3.0, 3.0]]),
        np.array([0.15, 0.15]),
        np.array([1.0, 3.0]),
        np.zeros((0, 2), int),
    )
    image = render_beads(layout, (80, 80), pixel_size_um=px)
    assert image[:40, :40].sum() * 3 == pytest.approx(image[40:, 40:].sum())


def test_persistent_walk_tangent_correlation():
    rng = np.random.default_rng(6)
    n, steps, step, persistence = 400, 400, 0.05, 5.0
    _, _, theta = persistent_walks(
        rng, np.zeros((n, 2)), np.zeros(n), steps, step, np.full(n, persistence)
    )
    for k in (40, 100, 300):
        correlation = np.cos(theta[:, k] - theta[:, 0]).mean()
        assert correlation == pytest.approx(math.exp(-k * step / persistence), abs=0.05)


# ------------------------------------------------------------------------------------ config


def test_presets_share_the_default_physics():
    assert {"beads", "filaments", "cells", "mixed", "fluo", "fluo-denoise"} <= set(PRESETS)
    generalists = {"fluo", "fluo-denoise"}
    for name, config in PRESETS.items():
        assert preset_config(name) is config
        assert config.scene == ("mixed" if name in generalists else name)
        assert config.target.na == 0.75 and config.target.magnification == 20
        assert config.target.pixel_size_um == pytest.approx(0.325)
        assert config.wavelength_um == 0.52
        if name == "fluo-denoise":  # the same objective and camera for both images
            assert config.input == config.target and config.scale == 1
            continue
        assert config.input.na == 0.4 and config.input.magnification == 10
        assert config.input.pixel_size_um == pytest.approx(0.65)
        assert config.scale == 2 and config.oversample == 4
        assert (config.input_bin, config.target_bin) == (8, 4)
        expected = (10.0, 2000.0) if name in generalists else (30.0, 1000.0)
        assert config.input_peak_photons == expected


def test_preset_overrides_are_validated():
    config = preset_config("cells", input_peak_photons=100, oversample=2)
    assert config.input_peak_photons == (100.0, 100.0)
    assert config.scene == "cells" and config.input_bin == 4
    with pytest.raises(InputError, match="invalid simulation settings: input_peak_photons"):
        preset_config("cells", input_peak_photons=(10, 1))
    with pytest.raises(ValueError, match="unknown simulation preset"):
        preset_config("nonsense")


def test_physics_for_model_metadata():
    physics = preset_config("beads").physics()
    assert physics.input_na == 0.4 and physics.target_na == 0.75
    assert physics.input_pixel_size_um == pytest.approx(0.65)
    assert physics.target_pixel_size_um == pytest.approx(0.325)
    assert physics.emission_wavelength_um == 0.52


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Microscope(na=-0.4, magnification=10), "greater than 0"),
        (lambda: Microscope(na=0.4, magnification=0), "greater than 0"),
        (lambda: Camera(pixel_size_um=-6.5), "greater than 0"),
        (lambda: Camera(qe=1.2), "less than or equal to 1"),
        (lambda: Camera(offset_adu=300, bit_depth=8), "no range"),
        # 6.5/15 µm target pixels: 0.65 / 0.4333 = 1.5, not a whole number of pixels.
        (lambda: SimulationConfig(target=Microscope(na=0.75, magnification=15)), "1, 2 or 4"),
        (lambda: SimulationConfig(target=Microscope(na=0.75, magnification=30)), "1, 2 or 4"),
        (lambda: SimulationConfig(oversample=1), "Nyquist"),
        (lambda: SimulationConfig(oversample=2.5), "integer"),
        (lambda: SimulationConfig(input_peak_photons=(1000, 30)), "low <= high"),
        (lambda: SimulationConfig(input_peak_photons=(0, 30)), "greater than 0"),
        (lambda: SimulationConfig(background_photons=(-1, 3)), "greater than or equal to 0"),
        (lambda: SimulationConfig(scene="stars"), "beads"),
        (lambda: SimulationConfig(psf="lorentz"), "airy"),
        (lambda: SimulationConfig(numerical_aperture=1.0), "Extra inputs"),
    ],
)
def test_invalid_configs_raise_clear_errors(make, message):
    with pytest.raises(ValidationError, match=message):
        make()


def test_configs_are_frozen():
    config = SimulationConfig()
    with pytest.raises(ValidationError):
        config.oversample = 2


def test_scale_factors():
    assert SimulationConfig().scale == 2
    assert SCALE4.scale == 4 and SCALE4.input_bin == 16
    same = SimulationConfig(input=Microscope(na=0.4, magnification=20))
    assert same.scale == 1 and same.input_bin == same.target_bin


# ------------------------------------------------------------------------------------ pairs


@pytest.mark.parametrize(("config", "scale"), [(preset_config("beads"), 2), (SCALE4, 4)])
def test_pair_shapes_dtypes_pixel_sizes(config, scale):
    pair = simulate_pair(config, shape=(48, 64), rng=0)
    assert pair.low.shape == (48 // scale, 64 // scale)
    assert pair.high.shape == (48, 64)
    assert pair.low.dtype == np.float32 and pair.high.dtype == np.float32
    assert pair.scale == scale
    assert pair.high_pixel_size_um == pytest.approx(0.325)
    assert pair.low_pixel_size_um == pytest.approx(0.325 * scale)
    meta = pair.metadata
    assert meta["scale"] == scale
    assert meta["input_pixel_size_um"] == pytest.approx(pair.low_pixel_size_um)
    assert meta["target_pixel_size_um"] == pytest.approx(pair.high_pixel_size_um)
    assert meta["fine_pixel_size_um"] == pytest.approx(0.325 / 4)
    assert (meta["input_na"], meta["target_na"], meta["wavelength_um"]) == (
        config.input.na,
        0.75,
        0.52,
    )
    assert 30 <= meta["input_peak_photons"] <= 1000
    assert meta["input_camera"]["read_noise_e"] == config.input.camera.read_noise_e
    assert meta["low_units"] == "ADU" and meta["high_units"] == "photons"
    # Low is camera output: whole ADU around the offset; high is non-negative photons.
    np.testing.assert_array_equal(pair.low, np.rint(pair.low))
    assert np.median(pair.low) >= config.input.camera.offset_adu
    assert pair.high.min() >= 0
    assert meta["target_peak_photons"] == pytest.approx(float(pair.high.max()), rel=1e-6)


def test_pair_is_reproducible_and_seed_dependent():
    config = preset_config("mixed")
    a = simulate_pair(config, shape=32, rng=np.random.default_rng(7))
    b = simulate_pair(config, shape=32, rng=np.random.default_rng(7))
    c = simulate_pair(config, shape=32, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a.low, b.low)
    np.testing.assert_array_equal(a.high, b.high)
    assert a.metadata == b.metadata
    assert not np.array_equal(a.high, c.high)
    assert not np.array_equal(a.low, c.low)


def test_simulate_pairs_is_seeded_per_index():
    config = preset_config("filaments")
    three = list(simulate_pairs(config, n=3, shape=32, seed=11))
    two = list(simulate_pairs(config, n=2, shape=32, seed=11))
    assert len(three) == 3
    for x, y in zip(two, three, strict=False):
        np.testing.assert_array_equal(x.low, y.low)
        np.testing.assert_array_equal(x.high, y.high)
    assert [p.metadata["index"] for p in three] == [0, 1, 2]
    assert not np.array_equal(three[0].high, three[1].high)
    other = next(simulate_pairs(config, n=1, shape=32, seed=12))
    assert not np.array_equal(other.high, three[0].high)


def test_shape_must_be_divisible_by_scale():
    with pytest.raises(ValueError, match="divisible by the scale factor 2"):
        simulate_pair(preset_config("beads"), shape=(33, 32), rng=0)
    with pytest.raises(ValueError, match="divisible by the scale factor 4"):
        simulate_pairs(SCALE4, n=2, shape=(32, 30), seed=0)  # raised eagerly, not on next()
    with pytest.raises(ValueError, match="shape"):
        simulate_pair(preset_config("beads"), shape=(0, 32), rng=0)


def ideal_camera() -> Camera:
    return Camera(qe=1.0, read_noise_e=0.0, gain_adu_per_e=1.0, offset_adu=0.0, bit_depth=32)


def test_brightness_convention_and_photon_budget():
    camera = ideal_camera()
    config = SimulationConfig(
        input=Microscope(na=0.4, magnification=10, camera=camera),
        scene="filaments",
        input_peak_photons=(500, 500),
        background_photons=(0, 0),
    )
    pair = simulate_pair(config, shape=128, rng=9)
    assert pair.metadata["input_peak_photons"] == 500
    # Ideal camera: low is Poisson(expected photons), whose maximum is the drawn peak.
    assert abs(pair.low.max() - 500) < 6 * math.sqrt(500)
    # The same fluorophores send the same photons to both microscopes.
    assert pair.low.sum() == pytest.approx(pair.high.sum(), rel=0.03)
    brighter = simulate_pair(
        config.model_copy(update={"target_photon_scale": 3.0}), shape=128, rng=9
    )
    np.testing.assert_allclose(brighter.high, 3 * pair.high, rtol=1e-5)
    np.testing.assert_array_equal(brighter.low, pair.low)


def test_background_adds_to_the_input_only_by_default():
    config = SimulationConfig(
        input=Microscope(na=0.4, magnification=10, camera=ideal_camera()),
        scene="beads",
        scene_density=0.01,  # ~ a single bead pair: mostly background
        background_photons=(50, 50),
        background_variation=0.0,
    )
    pair = simulate_pair(config, shape=64, rng=10)
    assert np.median(pair.low) == pytest.approx(50, abs=2)
    assert np.median(pair.high) < 1e-3
    with_bg = simulate_pair(config.model_copy(update={"target_background": True}), shape=64, rng=10)
    # 50 photons per 0.65 µm pixel are 12.5 per 0.325 µm pixel.
    assert np.median(with_bg.high) == pytest.approx(12.5, rel=0.05)
    assert pair.metadata["background_photons"] == 50


def test_acquired_ground_truth_is_camera_output():
    config = preset_config("beads", ground_truth="acquired", target_photon_scale=20.0)
    pair = simulate_pair(config, shape=64, rng=12)
    assert pair.metadata["high_units"] == "ADU"
    np.testing.assert_array_equal(pair.high, np.rint(pair.high))
    assert np.median(pair.high) == pytest.approx(config.target.camera.offset_adu, abs=10)
    assert pair.high.max() > config.target.camera.offset_adu + 100


def test_gaussian_psf_option_runs_end_to_end():
    config = preset_config("beads", psf="gaussian")
    pair = simulate_pair(config, shape=32, rng=13)
    assert pair.metadata["psf"] == "gaussian"
    assert pair.metadata["target_fwhm_um"] == pytest.approx(2.3548 * 0.21 * 0.52 / 0.75, rel=1e-3)
    assert pair.metadata["config"]["psf"] == "gaussian"
    assert SimulationConfig.model_validate(pair.metadata["config"]) == config
    assert np.isfinite(pair.high).all() and pair.high.max() > 0
