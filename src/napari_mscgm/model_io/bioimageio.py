"""Export a model as a bioimage.io package (model spec 0.5), for the wider ecosystem.

The package holds ``pytorch_state_dict`` weights whose architecture is
:class:`BioImageIOMSCGM` from this library (as CAREamics exports its models), so any
bioimage.io consumer with ``napari-mscgm`` installed runs the very same restoration:
the input is normalised by its 1st / 99.8th percentiles (the ``scale_range``
pre-processing, as in napari-mscgm), restored with the model's default steps and a
fixed seed, and returned in those normalised units. The package carries the physics
(axis scales in µm: the output's are finer for super-resolution), a README with the
model card, the test tensors that ``bioimageio.core.test_model`` checks, and the
citation of the method.

Needs the optional ``bioimageio.spec`` (``pip install "napari-mscgm[bioimageio]"``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import ModelConfig
from ..errors import InputError, OutputError

__all__ = ["BioImageIOMSCGM", "export_bioimageio", "read_package_weights"]

#: The napari-mscgm weights inside a package (an attachment): what load_model reads.
ATTACHED_WEIGHTS = "mscgm.safetensors"

#: The restoration's noise seed inside the package (bioimage.io tests need a fixed output).
EXPORT_SEED = 0
_TOLERANCE = 2e-3  # of the normalised range: percentiles and float rounding across machines


class BioImageIOMSCGM(nn.Module):
    """MSCGM as a bioimage.io architecture: normalised ``(batch, 1, y, x)`` in, the
    restoration on the target grid out (``(batch, 1, scale·y, scale·x)``).

    Parameters
    ----------
    model_config : dict
        The model's :class:`~napari_mscgm.config.ModelConfig`, as JSON-able data.
    steps, eta : optional
        Bridge steps and noise scale; the model's defaults when None.
    seed : int
        The noise seed (coordinate-keyed, so the output does not depend on tiling).
    """

    def __init__(
        self,
        model_config: dict[str, Any],
        steps: int | None = None,
        eta: float | None = None,
        seed: int = EXPORT_SEED,
    ) -> None:
        from ..core.mscgm import MSCGM

        super().__init__()
        self.mscgm = MSCGM(ModelConfig.model_validate(model_config))
        self.steps, self.eta = self.mscgm.sampling(steps, eta)
        self.seed = int(seed)

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        from ..core.noise import NoiseKey

        keys = [NoiseKey(self.seed)] * image.shape[0]
        dtype = image.dtype
        degraded = self.mscgm.upsample(image.float())
        restored = self.mscgm.sample(degraded, keys=keys, steps=self.steps, eta=self.eta)
        return restored.to(dtype)


def _spec() -> Any:
    try:
        from bioimageio.spec.model import v0_5
    except ImportError:
        raise InputError(
            "bioimage.io export needs bioimageio.spec: pip install 'napari-mscgm[bioimageio]'"
        ) from None
    return v0_5


def _readme(model, steps: int) -> str:
    c, p, t = model.config, model.config.physics, model.config.training
    lines = [
        f"# {c.name} (napari-mscgm)", "", c.description, "",
        "Multi-scale conditional generative modelling (MSCGM, Huang et al., arXiv 2407.05259): "
        "a Brownian-bridge diffusion restores the coarsest Haar band, conditional generators "
        "add the detail bands scale by scale.", "",
        "## Use", "",
        f"- Input: one 2D plane, {p.input_pixel_size_um:g} µm pixels, "
        f"{p.modality}, NA {p.input_na:g}, {p.emission_wavelength_um:g} µm emission; "
        "normalised by its 1st / 99.8th percentiles (the package's pre-processing).",
        f"- Output: {c.scale}× the pixels per axis ({p.target_pixel_size_um:g} µm), "
        f"NA {p.target_na:g}, in the normalised units.",
        f"- {steps} bridge step(s), seed {EXPORT_SEED}: one of the restorations the model can "
        "give. napari-mscgm itself offers other seeds, several samples with a spread (std) "
        "map, and the consistency check against the input; use it to judge how far to "
        "trust a result.",
        "",
        "## Training", "",
        f"- data: {t.data or 'not recorded'}",
        f"- iterations: {t.iterations or 'not recorded'}; date: {t.date or 'not recorded'}",
        "",
        "## Limitations", "",
        "Trained on simulated data. On structures or optics unlike its training data a "
        "generative model can invent plausible-looking structure: compare with the input, "
        "and run napari-mscgm's consistency check on important results.", "",
    ]  # fmt: skip
    return "\n".join(lines)


def _environment() -> str:
    from importlib.metadata import version

    return (
        "name: napari-mscgm\nchannels:\n  - conda-forge\ndependencies:\n  - python>=3.10\n"
        f"  - pip\n  - pip:\n      - napari-mscgm=={version('napari-mscgm')}\n"
    )


def _cover(test_input: np.ndarray, restored: np.ndarray, scale: int, path: Path) -> Path:
    """Input (normalised, nearest-upsampled) | restoration: a 2:1 PNG."""
    import imageio.v3 as iio

    def to_8bit(image: np.ndarray) -> np.ndarray:
        low, high = np.percentile(image, [0.5, 99.8])
        return (np.clip((image - low) / max(high - low, 1e-12), 0, 1) * 255).astype(np.uint8)

    big = np.kron(test_input, np.ones((scale, scale), test_input.dtype))
    iio.imwrite(path, np.concatenate([to_8bit(big), to_8bit(restored)], axis=1))
    return path


def read_package_weights(path: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Extract the napari-mscgm weights of a package made by :func:`export_bioimageio`.

    :func:`~napari_mscgm.load_model` then reads them with every check it makes (the
    package's own ``weights.pt`` is a pickle and is never opened here).
    """
    import zipfile

    from ..errors import WeightsError

    try:
        with zipfile.ZipFile(path) as package:
            if ATTACHED_WEIGHTS not in package.namelist():
                raise WeightsError(
                    f"{path}: not a bioimage.io package made by napari-mscgm (no {ATTACHED_WEIGHTS})"
                )
            return Path(package.extract(ATTACHED_WEIGHTS, folder))
    except zipfile.BadZipFile:
        raise WeightsError(f"{path}: not a zip file (a bioimage.io package is one)") from None


def _validated(cls: type, **fields: Any) -> Any:
    """A bioimage.io description, its validation failures as one line."""
    from pydantic import ValidationError

    from ..config._base import first_error

    try:
        return cls(**fields)
    except ValidationError as exc:
        raise InputError(
            f"cannot describe this model for bioimage.io: {first_error(exc)}"
        ) from None


def _sample_input(model, image: np.ndarray | None) -> np.ndarray:
    if image is None:  # the middle of the bundled cell sample
        from ..samples import load_sample

        cells, _ = load_sample("cells_low")
        y, x = (s // 2 - 32 for s in cells.shape)
        image = cells[y : y + 64, x : x + 64]
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2 or min(image.shape) < 16:
        raise InputError(
            f"the test image must be one 2D plane of at least 16×16, got {image.shape}"
        )
    return image


def _normalise_like_bioimageio(image: np.ndarray, pmin: float, pmax: float) -> np.ndarray:
    """``scale_range`` of bioimage.io: ``(x − p_low) / (p_high − p_low + 1e-6)``."""
    low, high = np.percentile(image, [pmin, pmax])
    return ((image - low) / (high - low + 1e-6)).astype(np.float32)


def export_bioimageio(
    model: Any,
    path: str | os.PathLike,
    *,
    image: np.ndarray | None = None,
    steps: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a bioimage.io model package (a ``.zip``).

    Parameters
    ----------
    model : MSCGM or str
        A loaded model, or a bundled / user model name or ``.safetensors`` path.
    path : path
        The ``.zip`` to write.
    image : numpy.ndarray, optional
        A 2D input plane for the package's test tensors (default: the middle 64×64 of
        the bundled cell sample).
    steps : int, optional
        Bridge steps; the model's default when None.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The package.
    """
    from ..io.atomic import atomic_path
    from ..model_io.weights import load_model

    v0_5 = _spec()
    from bioimageio.spec import save_bioimageio_package

    path = Path(path)
    if path.suffix != ".zip":
        raise InputError(f"{path}: a bioimage.io package is a .zip file")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists; choose another name or pass overwrite")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: output directory does not exist")
    card = None
    if isinstance(model, str | os.PathLike):
        from .catalog import model_path

        source = model_path(str(model)) or Path(model)
        card = Path(source).with_suffix(".md")  # a user model's card, beside its weights
        model = load_model(model, device="cpu")
    model = model.cpu().eval()
    config = model.config
    wrapper = BioImageIOMSCGM(config.model_dump(mode="json"), steps=steps)
    wrapper.mscgm.load_state_dict(model.state_dict())
    norm = config.normalization
    raw = _sample_input(model, image)
    test_input = raw[None, None]
    with torch.no_grad():
        normalised = _normalise_like_bioimageio(raw, norm.pmin, norm.pmax)[None, None]
        test_output = wrapper(torch.from_numpy(normalised)).numpy()

    p = config.physics
    space = {"unit": "micrometer"}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        files = {
            "input": folder / "test_input.npy", "output": folder / "test_output.npy",
            "weights": folder / "weights.pt", "readme": folder / "README.md",
            "env": folder / "environment.yaml", "cover": folder / "cover.png",
            "mscgm": folder / ATTACHED_WEIGHTS,
        }  # fmt: skip
        np.save(files["input"], test_input)
        np.save(files["output"], test_output)
        # bioimage.io's state-dict format is torch.save (tensors only; loadable with
        # weights_only=True); napari-mscgm itself only ever reads safetensors.
        torch.save(wrapper.state_dict(), files["weights"])
        readme = _readme(model, wrapper.steps)
        if card is not None and card.is_file():
            readme += "\n" + card.read_text(encoding="utf-8")
        files["readme"].write_text(readme, encoding="utf-8")
        _cover(normalised[0, 0], test_output[0, 0], config.scale, files["cover"])
        from .weights import save_model

        save_model(model, files["mscgm"])
        files["env"].write_text(_environment(), encoding="utf-8")

        inputs = v0_5.InputTensorDescr(
            id=v0_5.TensorId("raw"),
            description="one 2D plane, camera counts or any linear intensity",
            axes=[
                v0_5.BatchAxis(),
                v0_5.ChannelAxis(channel_names=[v0_5.Identifier("channel")]),
                *(
                    v0_5.SpaceInputAxis(
                        id=v0_5.AxisId(a),
                        scale=p.input_pixel_size_um,
                        size=v0_5.ParameterizedSize(min=16, step=1),
                        **space,
                    )
                    for a in ("y", "x")
                ),
            ],
            test_tensor=v0_5.FileDescr(source=files["input"]),
            preprocessing=[
                v0_5.ScaleRangeDescr(
                    kwargs=v0_5.ScaleRangeKwargs(
                        axes=[v0_5.AxisId("y"), v0_5.AxisId("x")],
                        min_percentile=norm.pmin,
                        max_percentile=norm.pmax,
                    )
                )
            ],
        )
        outputs = v0_5.OutputTensorDescr(
            id=v0_5.TensorId("restored"),
            description=f"the restoration, {config.scale}× the pixels per axis, normalised",
            axes=[
                v0_5.BatchAxis(),
                v0_5.ChannelAxis(channel_names=[v0_5.Identifier("channel")]),
                *(
                    v0_5.SpaceOutputAxis(
                        id=v0_5.AxisId(a),
                        scale=p.target_pixel_size_um,
                        size=v0_5.SizeReference(
                            tensor_id=v0_5.TensorId("raw"), axis_id=v0_5.AxisId(a)
                        ),
                        **space,
                    )
                    for a in ("y", "x")
                ),
            ],
            test_tensor=v0_5.FileDescr(source=files["output"]),
        )
        weights = v0_5.WeightsDescr(
            pytorch_state_dict=v0_5.PytorchStateDictWeightsDescr(
                source=files["weights"],
                architecture=v0_5.ArchitectureFromLibraryDescr(
                    import_from="napari_mscgm.model_io.bioimageio",
                    callable=v0_5.Identifier("BioImageIOMSCGM"),
                    kwargs={
                        "model_config": config.model_dump(mode="json"),
                        "steps": wrapper.steps,
                        "eta": wrapper.eta,
                        "seed": EXPORT_SEED,
                    },
                ),
                pytorch_version=v0_5.Version(torch.__version__.split("+")[0]),
                dependencies=v0_5.FileDescr(source=files["env"]),
            )
        )
        description = _validated(
            v0_5.ModelDescr,
            name=f"napari-mscgm {config.name}",
            description=(config.description or config.name)[:1000],
            authors=[v0_5.Author(name="napari-mscgm developers")],
            cite=[
                v0_5.CiteEntry(
                    text="Huang et al. Multi-scale conditional generative modeling for microscopic "
                    "image restoration. arXiv 2407.05259 (2024)",
                    url="https://arxiv.org/abs/2407.05259",
                ),
                v0_5.CiteEntry(
                    text="Li et al. BBDM: Image-to-image translation with Brownian bridge "
                    "diffusion models. CVPR 2023",
                    url="https://arxiv.org/abs/2205.07680",
                ),
            ],
            covers=[v0_5.FileDescr(source=files["cover"])],
            attachments=[v0_5.FileDescr(source=files["mscgm"])],
            license=config.license,
            documentation=v0_5.FileDescr(source=files["readme"]),
            tags=[
                "napari-mscgm",
                "mscgm",
                "diffusion",
                "fluorescence",
                "2d",
                "super-resolution" if config.scale > 1 else "denoising",
            ],
            inputs=[inputs],
            outputs=[outputs],
            weights=weights,
            config={
                "bioimageio": {
                    "test_kwargs": {
                        "pytorch_state_dict": {
                            "absolute_tolerance": _TOLERANCE,
                            "relative_tolerance": 0.0,
                        }
                    }
                }
            },
        )
        with atomic_path(path) as partial:  # the one atomic writer
            save_bioimageio_package(description, output_path=partial)
    return path
