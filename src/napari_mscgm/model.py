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

__all__ = [
    "MSCGM",
    "list_models",
    "load_model",
    "model_path",
    "parse_model_metadata",
    "read_model_config",
    "save_model",
]

METADATA_KEY = "mscgm"
#: Header key of the SHA-256 of the tensor data (the bytes after the header): safetensors
#: has no checksum of its own, so a flipped bit in a weight would otherwise load silently.
DATA_SHA_KEY = "mscgm_data_sha256"
#: Noise stream of generator ``k`` (bridge steps use streams 0 … T-1).
GENERATOR_STREAM = 1_000_000
#: Float tensors of the first level's width alive at the peak of a forward pass, and
#: floats per pixel of the wavelet pyramid and buffers: fitted to peak RSS on the CPU
#: (default model: about 350 bytes per target pixel, the tiny test model about 140).
_BLOCK_FLOATS = 12
_PYRAMID_FLOATS = 5
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

    def forward_bytes(self, height: int, width: int, batch: int = 1) -> int:
        """Estimated peak CPU memory of one :meth:`sample` call, in bytes.

        For a ``(batch, C, height, width)`` input on the target grid. The networks run
        one after another, so the peak is the widest network at its resolution
        (generator ``k`` at ``1 / 2**k``, the U-Net at ``1 / 2**levels``) plus the
        wavelet pyramid kept throughout. Per network: its input, ``_BLOCK_FLOATS``
        tensors of the first level's width (residual-block temporaries and convolution
        workspace, measured) and the skip connections of every level.
        """
        multiple = self.size_multiple
        pixels = (-(-height // multiple) * multiple) * (-(-width // multiple) * multiple)
        c = self.channels

        def network(cin: int, base: int, mults: tuple[int, ...], level: int) -> float:
            skips = sum(base * m / 4**i for i, m in enumerate(mults))
            return (cin + _BLOCK_FLOATS * base * mults[0] + skips) * pixels / 4**level

        unet = self.config.networks.unet
        peaks = [network(2 * c, unet.base_channels, unet.channel_mults, self.levels)]
        for k, g in enumerate(self.config.networks.generators, start=1):
            cin = 5 * c + g.noise_channels
            peaks.append(network(cin, g.base_channels, g.channel_mults, k))
        return int(4 * batch * (max(peaks) + _PYRAMID_FLOATS * c * pixels))

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
    """SHA-256 of a whole file (what ``models/SHA256SUMS`` lists)."""
    return _file_digests(Path(path))[0]


def _file_digests(path: Path) -> tuple[str, str]:
    """SHA-256 of the whole file and of its safetensors data section, in one read."""
    whole, data = hashlib.sha256(), hashlib.sha256()
    with open(path, "rb") as fh:
        head = fh.read(8)
        whole.update(head)
        skip = int.from_bytes(head, "little") if len(head) == 8 else 0  # the JSON header
        while skip > 0:
            chunk = fh.read(min(skip, 1 << 20))
            if not chunk:
                break
            whole.update(chunk)
            skip -= len(chunk)
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            whole.update(chunk)
            data.update(chunk)
    return whole.hexdigest(), data.hexdigest()


def save_model(model: MSCGM, path: str | Path) -> Path:
    """Write ``model`` as a safetensors file with its config under the header key ``mscgm``.

    The header also holds the SHA-256 of the tensor data (key ``mscgm_data_sha256``),
    checked by :func:`load_model`. The file appears atomically (written as
    ``<name>.part``, then renamed).
    """
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: weights are saved as .safetensors only")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {METADATA_KEY: model.metadata_json()}
    # The data section's layout does not depend on the header, so hash it from a first
    # serialisation and store the digest in the header of the second.
    blob = save(tensors, metadata=metadata)
    data_start = 8 + int.from_bytes(blob[:8], "little")
    metadata[DATA_SHA_KEY] = hashlib.sha256(blob[data_start:]).hexdigest()
    blob = save(tensors, metadata=metadata)
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(blob)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _refuse_pickle(path: Path) -> None:
    if not path.is_file():  # a FIFO or device would block or never end
        raise WeightsError(f"{path}: not a regular file")
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


def _read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """The header metadata and tensor shapes of a safetensors file (no tensor data read)."""
    from safetensors import safe_open

    if not path.is_file():  # a FIFO would block in open(); a directory is no file
        raise WeightsError(f"{path}: not a regular file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except Exception as exc:  # safetensors raises several types for damaged files
        raise WeightsError(
            f"{path}: not a readable safetensors file, truncated or corrupted ({_one_line(exc)})"
        ) from None
    return metadata, shapes


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_model_metadata(text: str, *, source: str | Path = "weights metadata") -> ModelConfig:
    """Validate the ``mscgm`` JSON document of a weights file.

    Raises
    ------
    WeightsError
        ``text`` is not JSON, not an object, from a newer format, or not a valid
        :class:`~napari_mscgm.config.ModelConfig`; the message starts with ``source``.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; absurd nesting
        raise WeightsError(
            f"{source}: the '{METADATA_KEY}' metadata is not valid JSON ({_one_line(exc)})"
        ) from None
    if not isinstance(document, dict):
        raise WeightsError(f"{source}: the '{METADATA_KEY}' metadata must be a JSON object")

    def newer(version: float) -> WeightsError:
        if isinstance(version, float) and version.is_integer():
            version = int(version)
        return WeightsError(
            f"{source}: written by a newer napari-mscgm (format {version}); this version "
            f"reads format {FORMAT_VERSION} and older; please upgrade napari-mscgm"
        )

    # Checked before validation, so that a newer file gets this message rather than
    # complaints about fields it added.
    version = document.get("format_version")
    if isinstance(version, str):  # validation would coerce "2" to 2
        try:
            version = float(version.strip())
        except ValueError:
            version = None
    if isinstance(version, int | float) and not isinstance(version, bool):
        if version > FORMAT_VERSION:
            raise newer(version)
    try:
        config = ModelConfig.model_validate(document)
    except Exception as exc:  # pydantic's ValidationError, or a validator's own error
        raise WeightsError(f"{source}: invalid model metadata: {_validation_detail(exc)}") from None
    if config.format_version > FORMAT_VERSION:  # e.g. "2" coerced to 2 by validation
        raise newer(config.format_version)
    return config


def _validation_detail(exc: Exception) -> str:
    """``field.path: problem`` of the first validation error (and how many more)."""
    errors = exc.errors() if hasattr(exc, "errors") else None
    if not errors:
        return _one_line(exc)
    first = errors[0]
    # Keys come from the file: escape control characters, keep them short.
    where = ".".join(
        str(part) if isinstance(part, int) else json.dumps(str(part), ensure_ascii=False)[1:-1][:40]
        for part in first.get("loc", ())
    )
    text = first.get("msg", "invalid")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {text}{more}" if where else f"{text}{more}"


def _header_config(path: Path, metadata: dict[str, str]) -> ModelConfig:
    """The validated config in the header ``metadata`` of the weights file ``path``."""
    if METADATA_KEY not in metadata:
        raise WeightsError(f"{path}: no '{METADATA_KEY}' metadata; not a napari-mscgm weights file")
    return parse_model_metadata(metadata[METADATA_KEY], source=path)


def read_model_config(path: str | Path) -> ModelConfig:
    """Read and validate the ``mscgm`` metadata of a weights file without loading tensors."""
    path = Path(path)
    metadata, _ = _read_header(path)
    return _header_config(path, metadata)


def load_model(name_or_path: str | Path, device: str | torch.device | None = "auto") -> MSCGM:
    """Load a bundled model by name, or a ``.safetensors`` weights file by path.

    Checks, each failing with a :class:`~napari_mscgm.errors.WeightsError` that names
    the file: pickle checkpoints (``.pt``, ``.pth``, ``.ckpt`` …) are refused
    without being opened; bundled files must match their SHA-256; the metadata
    must be valid and not from a newer format; the stored tensors must be exactly
    those of the architecture the metadata describes, with the same shapes
    (compared before any weight memory is allocated); the tensor data must match
    the checksum in the header (files written by :func:`save_model`) and be finite.

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
    sha, data_sha = _file_digests(path)
    if expected_sha is not None and sha != expected_sha:
        raise WeightsError(
            f"{path}: SHA-256 mismatch for bundled model '{name}' (expected {expected_sha[:12]}…, "
            f"got {sha[:12]}…); the installation is damaged, reinstall napari-mscgm"
        )
    metadata, stored = _read_header(path)
    config = _header_config(path, metadata)
    # Build on the meta device first: the metadata alone must not make us allocate
    # memory for an architecture the file does not hold.
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in MSCGM(config).state_dict().items()}
    except Exception as exc:
        raise WeightsError(
            f"{path}: cannot build the architecture it describes ({_one_line(exc)})"
        ) from None
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:3]}{' …' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected tensors {extra[:3]}{' …' if len(extra) > 3 else ''}")
        raise WeightsError(f"{path}: does not match its architecture: {'; '.join(parts)}")
    wrong = [k for k in sorted(stored) if stored[k] != expected[k]]
    if wrong:
        k = wrong[0]
        raise WeightsError(
            f"{path}: wrong architecture: tensor '{k}' has shape {stored[k]}, "
            f"the metadata implies {expected[k]}"
        )
    recorded = metadata.get(DATA_SHA_KEY)
    if recorded is not None and recorded != data_sha:
        raise WeightsError(
            f"{path}: corrupted tensor data (SHA-256 {data_sha[:12]}…, the header records "
            f"{recorded[:12]}…); get an intact copy of the file"
        )
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise WeightsError(f"{path}: tensors cannot be read ({_one_line(exc)})") from None
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise WeightsError(
                f"{path}: tensor '{k}' contains NaN or Inf values; the file is corrupted "
                "or came from a diverged training run"
            )
    model = MSCGM(config)
    try:
        model.load_state_dict(state)
    except Exception as exc:  # e.g. a dtype that cannot be copied into float32 weights
        raise WeightsError(f"{path}: tensors do not fit the model ({_one_line(exc)})") from None
    model.sha256 = sha
    model.eval()
    return model.to(resolve_device(device))
