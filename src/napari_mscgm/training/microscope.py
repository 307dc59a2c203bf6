"""Train for my microscope: simulate pairs for the user's optics, fine-tune a generalist.

The simulator knows optics and cameras, so a model for a microscope nobody trained for
needs no clean data: pairs are simulated with the broad structure library for that
pixel size, NA, wavelength and camera (drawn around them, as the generalists' data
are), and the closest bundled generalist (``fluo-denoise`` or ``fluo-sr2x``) is
fine-tuned on them. The result goes to the user model folder with a model card that
holds held-out metrics on simulated data for those optics.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import MSCGMTrainConfig
from ..config.microscope import FineTuneConfig, MicroscopeSpec
from ..config.simulation import Acquisition, Camera, Microscope, SimulationConfig
from ..errors import InputError, OutputError

__all__ = [
    "FineTuneResult",
    "camera_from_image",
    "fine_tune_for_microscope",
    "fine_tune_on_pairs",
    "generalist_for",
    "pairs_from_images",
    "simulation_for",
]

#: The generalist each task fine-tunes.
GENERALISTS = {"denoise": "fluo-denoise", "sr2x": "fluo-sr2x"}


@dataclass(frozen=True)
class FineTuneResult:
    """What a fine-tune wrote, and how its model scored on held-out simulated pairs."""

    path: Path
    card: Path
    metrics: dict[str, dict[str, float]]
    wall_time_s: float
    #: Stopped before the recipe's iterations (the model and card are of the run so far).
    stopped: bool = False


def camera_from_image(image: np.ndarray, *, qe: float = 0.8) -> Camera:
    """A camera estimated from a raw image (ADU) with the Poisson–Gaussian noise fit.

    ``variance = a · mean + b`` gives the gain (``a`` ADU per electron); the offset is
    taken as the image's 0.1st percentile (background light makes it an upper bound),
    and the read noise follows from ``b = g² σ² − g · offset``.
    """
    from ..core.noise_model import fit_poisson_gaussian

    data = np.asarray(image, dtype=np.float64)
    if data.ndim != 2 or min(data.shape) < 16:
        raise InputError(
            f"the camera is estimated from one 2D plane of ≥ 16² pixels, got {data.shape}"
        )
    fit = fit_poisson_gaussian(data)
    if not math.isfinite(fit.a) or fit.a <= 0:
        raise InputError(
            "cannot estimate the camera from this image (no signal-dependent noise: is it "
            "raw camera data, not processed or saturated?); enter gain, offset and read noise"
        )
    offset = max(float(np.percentile(data, 0.1)), 0.0)
    read_variance = (fit.b + fit.a * offset) / fit.a**2
    read_noise = math.sqrt(read_variance) if read_variance > 0 else 0.5
    return Camera(qe=qe, gain_adu_per_e=round(fit.a, 4), offset_adu=round(offset, 1),
                  read_noise_e=round(min(max(read_noise, 0.3), 30.0), 2))  # fmt: skip


def _around(value: float, spread: float = 0.2) -> tuple[float, float]:
    return (value * (1 - spread), value * (1 + spread))


def simulation_for(
    spec: MicroscopeSpec, fine_tune: FineTuneConfig | None = None
) -> SimulationConfig:
    """The simulator configuration for ``spec``: its optics, the broad structure library.

    The input's NA, PSF, illumination and camera are drawn around the microscope's for
    every pair (a given camera: within ±20 %), as for the generalists.
    """
    fine_tune = fine_tune or FineTuneConfig()
    camera = spec.camera or Camera()
    magnification = camera.pixel_size_um / spec.pixel_size_um
    target_na = spec.resolved_target_na
    target_px = spec.pixel_size_um / spec.scale
    # Fine grid: at least 2 fine pixels per target pixel and within the Nyquist pixel of
    # the highest NA drawn (the input's NA varies by up to 15 %).
    nyquist = spec.wavelength_um / (4 * max(spec.na * 1.15, target_na))
    oversample = min(max(2, math.ceil(target_px / nyquist)), 16)
    acquisition = {"same_objective": spec.task == "denoise"}
    if spec.camera is not None:
        acquisition.update(
            qe=_around(min(camera.qe, 0.83)), gain_adu_per_e=_around(camera.gain_adu_per_e),
            offset_adu=_around(max(camera.offset_adu, 1.0)),
            read_noise_e=_around(max(camera.read_noise_e, 0.1)),
        )  # fmt: skip
    try:
        return SimulationConfig(
            input=Microscope(na=spec.na, magnification=magnification, camera=camera),
            target=Microscope(
                na=target_na, magnification=magnification * spec.scale, camera=camera
            ),
            wavelength_um=spec.wavelength_um,
            oversample=oversample,
            scene="mixed",
            composite_fraction=0.25,
            input_peak_photons=fine_tune.photons,
            background_photons=(0.5, 30.0),
            acquisition=Acquisition(**acquisition),
        )
    except ValueError as exc:  # pydantic's ValidationError is one
        from ..config._base import first_error

        raise InputError(f"cannot simulate these optics: {first_error(exc)}") from None


def generalist_for(spec: MicroscopeSpec) -> str:
    """The bundled model a fine-tune for ``spec`` starts from."""
    from ..model_io.bundled import bundled_names, model_path
    from ..model_io.weights import read_model_config

    preferred = GENERALISTS[spec.task]
    names = bundled_names()
    if preferred in names:
        return preferred
    same_scale = [n for n in names if read_model_config(model_path(n)).scale == spec.scale]
    if not same_scale:
        raise InputError(
            f"no bundled model of scale {spec.scale} to fine-tune ({preferred} is not installed)"
        )
    return same_scale[0]


def output_path(name: str, *, overwrite: bool) -> Path:
    """Where the model called (or at the path) ``name`` is written; refuses to replace one."""
    from ..model_io.catalog import user_models_dir

    if name.endswith(".safetensors") or os.sep in name:
        path = Path(name).expanduser()
    else:
        if not name or any(c in name for c in '\\/:*?"<>|') or name.startswith("."):
            raise InputError(
                f"{name!r} is not a usable model name (a file stem: letters, digits, -, _)"
            )
        path = user_models_dir() / f"{name}.safetensors"
    if path.exists() and not overwrite:
        raise OutputError(
            f"{path}: a model of this name exists (choose another name or overwrite it)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _recipe(
    spec: MicroscopeSpec, fine_tune: FineTuneConfig, name: str, init: str
) -> MSCGMTrainConfig:
    from ..model_io.catalog import model_path
    from ..model_io.weights import read_model_config

    simulation = simulation_for(spec, fine_tune)
    base = read_model_config(model_path(init) or init)  # a model's name, or a path
    crop = fine_tune.crop - fine_tune.crop % (spec.scale * 2**base.levels * 4)
    optics = (
        "same optics in and out"
        if spec.task == "denoise"
        else (f"-> {spec.pixel_size_um / 2:g} um pixels, NA {spec.resolved_target_na:g}")
    )
    return MSCGMTrainConfig(
        name=name,
        description=(
            f"Fine-tuned from {init} for {spec.pixel_size_um:g} um pixels, NA {spec.na:g} "
            f"({spec.immersion}), {spec.wavelength_um * 1000:g} nm emission ({optics}) on "
            "simulated pairs of every structure class."
        ),
        scale=spec.scale,
        levels=base.levels,
        networks=base.networks,
        bbdp=base.bbdp,
        physics=simulation.physics(),
        data={
            "simulation": simulation,
            "n": fine_tune.pairs,
            "shape": fine_tune.shape,
            "seed": fine_tune.seed,
            "validation": fine_tune.validation,
            "workers": fine_tune.workers,
        },
        crop=max(crop, spec.scale * 2**base.levels * 4),
        bridge={"iterations": fine_tune.bridge_iterations, "batch_size": 16, "lr": 1e-4},
        generators={"iterations": fine_tune.generator_iterations, "batch_size": 8, "lr": 1e-4},
        alpha=0.03,
        lr_d=1e-5,
        lr_warmup=min(50, max(fine_tune.generator_iterations // 10, 1)),
        val_every=max(1, min(100, fine_tune.generator_iterations // 4 or 1)),
        checkpoint_every=100,
        val_steps=1,
        precision="bfloat16",
        seed=fine_tune.seed,
    )


def pairs_from_images(low: np.ndarray, high: np.ndarray, *, scale: int, tiles: int = 2) -> list:
    """One registered image pair cut into ``tiles × tiles`` pairs (training needs several,
    and one held out), after the registration check of folder pairs: the target is
    ``scale`` times the input in both axes.

    Returns
    -------
    list of (name, low, high)
    """
    low, high = np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)
    if low.ndim != 2 or high.ndim != 2:
        raise InputError(f"the pair must be two 2D planes, got {low.shape} and {high.shape}")
    if high.shape != (low.shape[0] * scale, low.shape[1] * scale):
        raise InputError(
            f"the pair is not registered for scale {scale}: target {high.shape} is not "
            f"{scale}× the input {low.shape}"
        )
    h, w = low.shape[0] // tiles, low.shape[1] // tiles
    if min(h, w) < 32:
        raise InputError(f"the pair is too small to train on: {low.shape} (at least 64×64)")
    return [
        (f"tile {i}-{j}", low[i * h : (i + 1) * h, j * w : (j + 1) * w],
         high[i * h * scale : (i + 1) * h * scale, j * w * scale : (j + 1) * w * scale])
        for i in range(tiles) for j in range(tiles)
    ]  # fmt: skip


def fine_tune_on_pairs(
    pairs: str | os.PathLike | list,
    spec: MicroscopeSpec,
    name: str,
    *,
    fine_tune: FineTuneConfig | None = None,
    overwrite: bool = False,
    device: str = "auto",
    threads: int | None = None,
    callback: Callable[[str, int, int, float], None] | None = None,
    step_callback: Callable[[str, int, int], None] | None = None,
    command: str = "napari_mscgm.training.microscope.fine_tune_on_pairs",
) -> FineTuneResult:
    """Fine-tune the closest bundled generalist on the user's own registered pairs.

    Parameters
    ----------
    pairs : path or list of (name, low, high)
        A folder with ``low/`` and ``high/`` (checked by
        :func:`~napari_mscgm.training.datasets.read_pairs`), or pairs already read
        (:func:`pairs_from_images` cuts one pair of layers into several).
    spec : MicroscopeSpec
        The microscope the pairs come from: the model's physics and task.
    name, fine_tune, overwrite, device, threads, callback, step_callback
        As for :func:`fine_tune_for_microscope` (``fine_tune.pairs`` and ``shape`` do not
        apply: the data are the user's).

    The last pair is held out for validation and for the card's metrics.
    """
    from .datasets import pool_of, read_pairs

    fine_tune = fine_tune or FineTuneConfig()
    folder = isinstance(pairs, str | os.PathLike)
    source = f"folder {pairs}" if folder else "image layers"
    read = read_pairs(pairs, scale=spec.scale) if folder else list(pairs)
    if len(read) < 2:
        raise InputError("need at least 2 pairs (one is held out for validation)")
    path = output_path(name, overwrite=overwrite)
    init = generalist_for(spec)
    recipe = _recipe(spec, fine_tune, path.name.removesuffix(".safetensors"), init)
    norm = recipe.normalization
    pool = pool_of(read, scale=spec.scale, pmin=norm.pmin, pmax=norm.pmax)
    multiple = spec.scale * 16
    crop = min(recipe.crop, pool.min_target_size - pool.min_target_size % multiple)
    recipe = recipe.model_copy(update={
        "data": recipe.data.model_copy(update={"source": "folder", "path": source,
                                               "validation": 1, "simulation": None}),
        "crop": max(crop, multiple),
        "description": recipe.description.replace("simulated pairs of every structure class",
                                                   f"the user's own pairs ({source})"),
    })  # fmt: skip
    return _train_and_card(
        recipe, path, init, spec, pool=pool, held_out=[read[-1]],
        held_out_text=f"the last of your pairs ({read[-1][0]}), never trained on",
        device=device, threads=threads, callback=callback, step_callback=step_callback,
        command=command,
    )  # fmt: skip


def _scores(model, pairs: list) -> dict:
    """The model against the simple baselines on ``pairs`` (``(name, low, high)``)."""
    from ..evaluation.protocol import methods_for
    from ..evaluation.run import evaluate

    steps, eta = model.sampling()
    methods = methods_for(model, steps=steps, eta=eta)
    methods.pop("fourier oracle (reference)", None)
    return evaluate({"held-out": pairs}, methods).summary["held-out"]


def _train_and_card(
    recipe: MSCGMTrainConfig,
    path: Path,
    init: str,
    spec: MicroscopeSpec,
    *,
    pool,
    held_out: list,
    held_out_text: str | None,
    device: str,
    threads: int | None,
    callback: Callable | None,
    step_callback: Callable | None,
    command: str,
) -> FineTuneResult:
    """Train, score on ``held_out``, write the card: what every fine-tune ends with."""
    from ..model_io.weights import load_model
    from .loop import train

    start = _dt.datetime.now()
    result = train(recipe, path, device=device, init=init, pool=pool, log=path.with_suffix(".csv"),
                   progress=False, command=command, callback=callback,
                   step_callback=step_callback, threads=threads)  # fmt: skip
    model = load_model(path, device="cpu")
    metrics = _scores(model, held_out)
    planned = {"bridge": recipe.bridge.iterations, "generators": recipe.generators.iterations}
    card = write_card(path, model, spec, metrics, init, command,
                      planned=planned if result.stopped else None,
                      held_out=held_out_text)  # fmt: skip
    seconds = (_dt.datetime.now() - start).total_seconds()
    return FineTuneResult(path, card, metrics, seconds, result.stopped)


def held_out_pairs(spec: MicroscopeSpec, fine_tune: FineTuneConfig, *, n: int = 6) -> list:
    """Simulated pairs for these optics (not drawn around them) with unseen seeds."""
    from ..simulate import simulate_pairs

    config = simulation_for(spec, fine_tune).model_copy(update={"acquisition": None})
    return [(f"held-out {i}", p.low, p.high)
            for i, p in enumerate(simulate_pairs(config, n=n, shape=fine_tune.shape,
                                                 seed=fine_tune.seed + 10_000))]  # fmt: skip


def write_card(
    path: Path,
    model,
    spec: MicroscopeSpec,
    metrics: dict,
    init: str,
    command: str,
    *,
    planned: dict[str, int] | None = None,
    held_out: str | None = None,
) -> Path:
    """``<model>.md`` beside the weights: physics, training, held-out metrics."""
    from ..io.atomic import write_text

    c, p, t = model.config, model.config.physics, model.config.training
    lines = [
        f"# Model card: `{c.name}`", "", c.description, "",
        "## Physics", "",
        "| | input | output |", "|---|---|---|",
        f"| pixel size | {p.input_pixel_size_um:g} µm | {p.target_pixel_size_um:g} µm |",
        f"| NA | {p.input_na:g} | {p.target_na:g} |",
        f"| emission | {p.emission_wavelength_um:g} µm | |",
        f"| immersion | {spec.immersion} | |",
        f"| camera | {spec.camera.model_dump() if spec.camera else 'default sCMOS, varied'} | |",
        "",
        "## Training", "",
        f"- fine-tuned from the bundled `{init}`",
        f"- data: {t.data}",
        f"- iterations: {t.iterations}; {t.wall_time_s:.0f} s; {t.date}",
        *([f"- **stopped early**: {planned} were planned"] if planned else []),
        f"- command: `{command}`",
        "",
        *(["## Held-out pair", "", f"Scored on {held_out}.", ""] if held_out else [
            "## Held-out simulated pairs for these optics", "",
            "Simulated with these optics (not drawn around them), seeds never trained on. "
            "Real samples differ from simulated ones: check the consistency verdict of every "
            "restoration.", ""]),
        "| method | PSNR (dB) | SSIM | HF-error |", "|---|---|---|---|",
    ]  # fmt: skip
    for method, s in metrics.items():
        psnr, ssim, hf = (s.get(k) for k in ("psnr", "ssim", "hf_error"))
        lines.append(
            f"| {method} | {'–' if psnr is None else f'{psnr:.2f}'} | "
            f"{'–' if ssim is None else f'{ssim:.3f}'} | {'–' if hf is None else f'{hf:.2f}'} |"
        )
    return write_text(path.with_suffix(".md"), "\n".join(lines) + "\n")


def fine_tune_for_microscope(
    spec: MicroscopeSpec,
    name: str,
    *,
    fine_tune: FineTuneConfig | None = None,
    overwrite: bool = False,
    device: str = "auto",
    threads: int | None = None,
    callback: Callable[[str, int, int, float], None] | None = None,
    step_callback: Callable[[str, int, int], None] | None = None,
    command: str = "napari_mscgm.training.microscope.fine_tune_for_microscope",
) -> FineTuneResult:
    """Fine-tune the closest bundled generalist for ``spec`` and save it as a user model.

    Parameters
    ----------
    spec : MicroscopeSpec
        The microscope (validated against physics) and the task.
    name : str
        The model's name (a file in the user model folder) or a ``.safetensors`` path.
    fine_tune : FineTuneConfig, optional
        Pairs, iterations, crop, photon range and seed (default: ``FineTuneConfig()``).
    overwrite : bool
        Replace a model of that name; without it an existing one is an error.
    device, threads
        As for :func:`napari_mscgm.training.loop.train`.
    callback : callable, optional
        ``callback(stage, iteration, stage_iterations, mean_loss)`` at each validation.
    step_callback : callable, optional
        ``step_callback(stage, iteration, stage_iterations)`` before each step; raising
        :class:`~napari_mscgm.training.loop.StopTraining` ends the training early: the
        model so far is saved, scored and carded (``FineTuneResult.stopped``).

    Returns
    -------
    FineTuneResult
    """

    fine_tune = fine_tune or FineTuneConfig()
    path = output_path(name, overwrite=overwrite)
    init = generalist_for(spec)
    recipe = _recipe(spec, fine_tune, path.name.removesuffix(".safetensors"), init)
    return _train_and_card(
        recipe, path, init, spec, pool=None, held_out=held_out_pairs(spec, fine_tune),
        held_out_text=None, device=device, threads=threads, callback=callback,
        step_callback=step_callback, command=command,
    )  # fmt: skip
