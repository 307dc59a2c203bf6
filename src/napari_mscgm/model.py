"""The MSCGM model: wavelet split, Brownian bridge on ``LL_S``, generators coarse to fine.

Also the weights format: safetensors tensors plus one JSON document (a
:class:`~napari_mscgm.config.ModelConfig`) under the header key ``mscgm``.
Loading never unpickles anything.

Value conventions inside the model (all on the target grid):

* images are percentile-normalised to roughly [0, 1] (see :mod:`napari_mscgm.pipeline`);
* the bridge runs on ``LL_S / 2**S`` mapped to [-1, 1] (``LL_S`` is ``2**S`` times
  the local mean of an orthonormal Haar transform);
* the generator of scale ``k`` sees its bands divided by ``2**k`` for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .bbdp import BrownianBridge
from .config import FORMAT_VERSION, ModelConfig
from .device import resolve_device
from .errors import WeightsError
from .networks import HighFrequencyGenerator, TimeConditionedUNet
from .noise import NoiseKey, gaussian_field
from .wavelets import haar_dwt2_level, haar_idwt2_level, pad_to_multiple

__all__ = ["MSCGM", "list_models", "load_model", "model_path", "save_model"]

METADATA_KEY = "mscgm"
#: Noise stream of generator ``k`` (bridge steps use streams 0 … T-1).
GENERATOR_STREAM = 1_000_000
_PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar"}


class MSCGM(nn.Module):
    """Multi-scale conditional generative model for one imaging task.

    Parameters
    ----------
    config : ModelConfig
        Architecture and metadata; ``MSCGM(ModelConfig())`` gives the default sizes.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.bridge = BrownianBridge(config.bbdp.num_timesteps, config.bbdp.max_var)
        self.unet = TimeConditionedUNet(**config.networks.unet.model_dump())
        self.generators = nn.ModuleList(
            HighFrequencyGenerator(**g.model_dump()) for g in config.networks.generators
        )
        self.sha256: str | None = None  # set by load_model

    # ------------------------------------------------------------ properties
    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def levels(self) -> int:
        return self.config.levels

    @property
    def channels(self) -> int:
        return self.config.networks.unet.channels

    @property
    def size_multiple(self) -> int:
        """Target-grid sizes (and tile origins) must be multiples of this."""
        multiple = (2**self.levels) * self.unet.size_multiple
        for k, gen in enumerate(self.generators, start=1):
            multiple = max(multiple, (2**k) * gen.size_multiple)
        return multiple

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------ the method
    def upsample(self, image: torch.Tensor) -> torch.Tensor:
        """Resample ``(N, C, h, w)`` onto the target grid (bicubic, pixel-centre aligned)."""
        if self.scale == 1:
            return image
        return F.interpolate(image, scale_factor=self.scale, mode="bicubic", align_corners=False)

    def to_bridge(self, ll: torch.Tensor) -> torch.Tensor:
        return ll * (2.0 / 2**self.levels) - 1.0

    def from_bridge(self, value: torch.Tensor) -> torch.Tensor:
        return (value + 1.0) * (2**self.levels / 2.0)

    @torch.no_grad()
    def sample(
        self,
        degraded: torch.Tensor,
        *,
        keys: Sequence[NoiseKey],
        steps: int | None = None,
        eta: float | None = None,
        callback: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Restore a batch already on the target grid.

        Parameters
        ----------
        degraded : torch.Tensor
            ``(N, C, H, W)`` normalised degraded images, resampled to the target grid.
        keys : sequence of NoiseKey
            The noise identity of each batch item; ``(y0, x0)`` is its absolute
            position on the target grid and must be a multiple of ``2**levels``.
        steps, eta : optional
            Reverse bridge steps and noise scale; the model's defaults when None.
        callback : callable, optional
            ``callback(i, steps)`` after each bridge step.

        Returns
        -------
        torch.Tensor
            ``(N, C, H, W)`` restored images, normalised like the input.
        """
        steps = self.config.bbdp.default_steps if steps is None else int(steps)
        eta = self.config.bbdp.default_eta if eta is None else float(eta)
        if len(keys) != degraded.shape[0]:
            raise ValueError(
                f"need one noise key per batch item, got {len(keys)} for {degraded.shape[0]}"
            )
        padded, (height, width) = pad_to_multiple(degraded, self.size_multiple)
        degraded_lls = [padded]
        degraded_details = []
        for _ in range(self.levels):
            ll, details = haar_dwt2_level(degraded_lls[-1])
            degraded_lls.append(ll)
            degraded_details.append(details)

        condition = self.to_bridge(degraded_lls[-1])
        shape = tuple(condition.shape[-2:])
        device = padded.device

        def bridge_noise(i: int) -> torch.Tensor:
            return gaussian_field(
                keys,
                stream=i,
                level=self.levels,
                shape=shape,
                channels=self.channels,
                device=device,
            ).to(condition.dtype)

        restored = self.bridge.sample(
            lambda x_t, t: self.unet(x_t, t, condition),
            condition,
            steps=steps,
            eta=eta,
            noise=bridge_noise,
            callback=callback,
        )
        ll = self.from_bridge(restored)
        for k in range(self.levels, 0, -1):
            generator = self.generators[k - 1]
            noise = gaussian_field(
                keys,
                stream=GENERATOR_STREAM + k,
                level=k,
                shape=tuple(ll.shape[-2:]),
                channels=generator.noise_channels,
                device=device,
            ).to(ll.dtype)
            band_scale = 2.0**k
            details = generator(
                ll / band_scale,
                degraded_lls[k] / band_scale,
                degraded_details[k - 1] / band_scale,
                noise,
            )
            ll = haar_idwt2_level(ll, details * band_scale)
        return ll[..., :height, :width]

    # ------------------------------------------------------------ weights
    def metadata_json(self) -> str:
        return self.config.model_dump_json()


# ---------------------------------------------------------------- weights I/O
def _bundled_dir() -> Path:
    return Path(str(resources.files("napari_mscgm") / "models"))


def _bundled_checksums() -> dict[str, str]:
    """``{name: sha256}`` of the bundled models, from ``models/SHA256SUMS``."""
    sums = _bundled_dir() / "SHA256SUMS"
    if not sums.is_file():
        return {}
    out = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, filename = line.split()
            out[filename.removesuffix(".safetensors")] = digest
    return out


def list_models() -> list[str]:
    """Names of the models bundled with the package."""
    return sorted(_bundled_checksums())


def model_path(name: str) -> Path:
    """Path of a bundled model's weights file."""
    return _bundled_dir() / f"{name}.safetensors"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(model: MSCGM, path: str | Path) -> Path:
    """Write ``model`` as a safetensors file with its config under the header key ``mscgm``."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: weights are saved as .safetensors only")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".part")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: model.metadata_json()})
    # safetensors creates files owner-only (0600); give them the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    tmp.replace(path)
    return path


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise WeightsError(
            f"{path}: '{path.suffix}' is a pickle checkpoint; napari-mscgm loads only "
            ".safetensors weights, because unpickling can run arbitrary code"
        )
    with open(path, "rb") as fh:
        head = fh.read(9)
    # A safetensors file starts with its JSON header's length (u64, little-endian) and "{".
    # Recognise that first: the length's low byte may itself be 0x80.
    header_length = int.from_bytes(head[:8], "little") if len(head) == 9 else 0
    if head[8:9] == b"{" and 0 < header_length <= path.stat().st_size - 8:
        return
    # Pickle protocol 2+ starts with 0x80; torch.save files are zip archives ("PK").
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise WeightsError(
            f"{path}: this is a pickle/torch.save checkpoint, not safetensors; it was not "
            "opened, because unpickling can run arbitrary code"
        )


def read_model_config(path: str | Path) -> ModelConfig:
    """Read and validate the ``mscgm`` metadata of a weights file without loading tensors."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except Exception as exc:  # safetensors raises several types for damaged files
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if METADATA_KEY not in header:
        raise WeightsError(
            f"{path}: no '{METADATA_KEY}' metadata; not an napari-mscgm weights file"
        )
    try:
        document = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise WeightsError(
            f"{path}: the '{METADATA_KEY}' metadata is not valid JSON ({exc})"
        ) from None
    if not isinstance(document, dict):
        raise WeightsError(f"{path}: the '{METADATA_KEY}' metadata must be a JSON object")
    version = document.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise WeightsError(
            f"{path}: written by a newer napari-mscgm (format {version}); this version reads "
            f"format {FORMAT_VERSION} and older; please upgrade napari-mscgm"
        )
    try:
        return ModelConfig.model_validate(document)
    except Exception as exc:
        first = str(exc).splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) if len(first) > 1 else str(exc)
        raise WeightsError(f"{path}: invalid model metadata: {detail}") from None


def load_model(name_or_path: str | Path, device: str | torch.device | None = "auto") -> MSCGM:
    """Load a bundled model by name, or a ``.safetensors`` weights file by path.

    Bundled files are checked against their SHA-256. Pickle checkpoints
    (``.pt``, ``.pth``, ``.ckpt`` …) are refused without being opened.

    Parameters
    ----------
    name_or_path : str or Path
        A name from :func:`list_models` or a path.
    device : str, optional
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda[:i]"`` or ``"mps"``.
    """
    from safetensors.torch import load_file

    checksums = _bundled_checksums()
    name = str(name_or_path)
    expected_sha = None
    if name in checksums:
        path = model_path(name)
        expected_sha = checksums[name]
    else:
        path = Path(name_or_path).expanduser()
        if not path.exists():
            known = ", ".join(checksums) or "none installed"
            raise WeightsError(f"{path}: no such weights file or bundled model (bundled: {known})")
        if path.is_dir():
            raise WeightsError(f"{path}: is a directory, not a weights file")
    _refuse_pickle(path)
    sha = file_sha256(path)
    if expected_sha is not None and sha != expected_sha:
        raise WeightsError(
            f"{path}: SHA-256 mismatch for bundled model '{name}' (expected {expected_sha[:12]}…, "
            f"got {sha[:12]}…); the installation is damaged, reinstall napari-mscgm"
        )
    config = read_model_config(path)
    try:
        model = MSCGM(config)
    except Exception as exc:
        raise WeightsError(f"{path}: cannot build the architecture it describes ({exc})") from None
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise WeightsError(f"{path}: tensors cannot be read ({exc})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:3]}{' …' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected tensors {extra[:3]}{' …' if len(extra) > 3 else ''}")
        raise WeightsError(f"{path}: does not match its architecture: {'; '.join(parts)}")
    wrong = [k for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        k = wrong[0]
        raise WeightsError(
            f"{path}: wrong architecture: tensor '{k}' has shape {tuple(state[k].shape)}, "
            f"the metadata implies {tuple(expected[k].shape)}"
        )
    model.load_state_dict(state)
    model.sha256 = sha
    model.eval()
    return model.to(resolve_device(device))
