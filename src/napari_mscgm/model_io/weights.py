"""Safetensors weights of MSCGM and of the CARE-like baseline, with every check, never a pickle.

A weights file holds the state dict and, in its header, one JSON document: the
model's config under ``mscgm`` (:class:`~napari_mscgm.config.ModelConfig`) or
``mscgm_care`` (:class:`~napari_mscgm.config.CAREConfig`), plus the SHA-256 of the
tensor data (safetensors has no checksum of its own, so a flipped bit in a weight
would otherwise load silently). Both kinds are loaded by the same code: pickles are
refused unopened, the metadata is validated, the stored tensors must be exactly those
of the architecture the metadata describes (compared before any weight memory is
allocated), the data must match their checksum and be finite.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from ..config import FORMAT_VERSION, CAREConfig, ModelConfig, first_error
from ..core.care import CARENet
from ..core.mscgm import MSCGM
from ..device import resolve_device
from ..errors import WeightsError, first_line
from ..io.atomic import write_bytes
from .bundled import bundled_checksums, file_digests, model_path

__all__ = [
    "CARE_METADATA_KEY",
    "DATA_SHA_KEY",
    "METADATA_KEY",
    "load_care",
    "load_model",
    "parse_model_metadata",
    "read_header",
    "read_model_config",
    "refuse_pickle",
    "save_model",
]

METADATA_KEY = "mscgm"
CARE_METADATA_KEY = "mscgm_care"
#: Header key of the SHA-256 of the tensor data (the bytes after the header).
DATA_SHA_KEY = "mscgm_data_sha256"
_PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar"}


@dataclass(frozen=True)
class _Kind:
    """One kind of weights file: its header key, config class and network."""

    key: str
    config: type[BaseModel]
    build: Callable[[Any], nn.Module]
    what: str  # for messages: "a napari-mscgm weights file"


_MSCGM = _Kind(METADATA_KEY, ModelConfig, MSCGM, "a napari-mscgm weights file")
_CARE = _Kind(CARE_METADATA_KEY, CAREConfig, CARENet, "a CARE baseline")


def _kind_of(module: nn.Module) -> _Kind:
    if isinstance(module, MSCGM):
        return _MSCGM
    if isinstance(module, CARENet):
        return _CARE
    raise WeightsError(f"cannot save a {type(module).__name__}; expected MSCGM or CARENet")


# ---------------------------------------------------------------- writing
def save_model(model: MSCGM | CARENet, path: str | Path) -> Path:
    """Write ``model`` (MSCGM or the CARE baseline) as safetensors with its config in the header.

    The header also holds the SHA-256 of the tensor data (key ``mscgm_data_sha256``),
    checked at load. The file appears atomically.
    """
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: weights are saved as .safetensors only")
    kind = _kind_of(model)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {kind.key: model.metadata_json()}
    # The data section's layout does not depend on the header, so hash it from a first
    # serialisation and store the digest in the header of the second.
    blob = save(tensors, metadata=metadata)
    data_start = 8 + int.from_bytes(blob[:8], "little")
    metadata[DATA_SHA_KEY] = hashlib.sha256(blob[data_start:]).hexdigest()
    return write_bytes(path, save(tensors, metadata=metadata))


# ---------------------------------------------------------------- checks
def refuse_pickle(path: Path) -> None:
    """Refuse, without opening it for reading objects, anything that is not safetensors."""
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


def read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
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
            f"{path}: not a readable safetensors file, truncated or corrupted ({first_line(exc)})"
        ) from None
    return metadata, shapes


def parse_model_metadata(
    text: str, *, source: str | Path = "weights metadata", kind: _Kind = _MSCGM
) -> Any:
    """Validate the config document of a weights file (``mscgm`` by default).

    Raises
    ------
    WeightsError
        ``text`` is not JSON, not an object, from a newer format, or not a valid
        config; the message starts with ``source``.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; absurd nesting
        raise WeightsError(
            f"{source}: the '{kind.key}' metadata is not valid JSON ({first_line(exc)})"
        ) from None
    if not isinstance(document, dict):
        raise WeightsError(f"{source}: the '{kind.key}' metadata must be a JSON object")
    # Checked before validation, so that a newer file gets this message rather than
    # complaints about fields it added.
    _refuse_newer(source, document.get("format_version"))
    try:
        config = kind.config.model_validate(document)
    except Exception as exc:  # pydantic's ValidationError, or a validator's own error
        raise WeightsError(f"{source}: invalid model metadata: {first_error(exc)}") from None
    _refuse_newer(source, config.format_version)  # e.g. "2" coerced to 2 by validation
    return config


def _refuse_newer(source: str | Path, version: Any) -> None:
    if isinstance(version, str):  # validation would coerce "2" to 2
        try:
            version = float(version.strip())
        except ValueError:
            return
    if not isinstance(version, int | float) or isinstance(version, bool):
        return
    if version > FORMAT_VERSION:
        if isinstance(version, float) and version.is_integer():
            version = int(version)
        raise WeightsError(
            f"{source}: written by a newer napari-mscgm (format {version}); this version "
            f"reads format {FORMAT_VERSION} and older; please upgrade napari-mscgm"
        )


def _header_config(path: Path, metadata: dict[str, str], kind: _Kind) -> Any:
    if kind.key not in metadata:
        raise WeightsError(f"{path}: no '{kind.key}' metadata; not {kind.what}")
    return parse_model_metadata(metadata[kind.key], source=path, kind=kind)


def read_model_config(path: str | Path) -> ModelConfig:
    """Read and validate the ``mscgm`` metadata of a weights file without loading tensors."""
    path = Path(path)
    metadata, _ = read_header(path)
    return _header_config(path, metadata, _MSCGM)


def _check_architecture(path: Path, config: Any, kind: _Kind, stored: dict) -> None:
    """The stored tensors must be exactly the architecture's, with the same shapes.

    Built on the meta device: the metadata alone must not make us allocate memory
    for an architecture the file does not hold.
    """
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in kind.build(config).state_dict().items()}
    except Exception as exc:
        raise WeightsError(
            f"{path}: cannot build the architecture it describes ({first_line(exc)})"
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


def _read_tensors(path: Path, metadata: dict[str, str], data_sha: str) -> dict:
    from safetensors.torch import load_file

    recorded = metadata.get(DATA_SHA_KEY)
    if recorded is not None and recorded != data_sha:
        raise WeightsError(
            f"{path}: corrupted tensor data (SHA-256 {data_sha[:12]}…, the header records "
            f"{recorded[:12]}…); get an intact copy of the file"
        )
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise WeightsError(f"{path}: tensors cannot be read ({first_line(exc)})") from None
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise WeightsError(
                f"{path}: tensor '{k}' contains NaN or Inf values; the file is corrupted "
                "or came from a diverged training run"
            )
    return state


def _load(path: Path, kind: _Kind, *, bundled: tuple[str, str] | None = None) -> Any:
    """Every check, then the module (on the CPU, in eval mode, with its ``sha256``)."""
    refuse_pickle(path)
    sha, data_sha = file_digests(path)
    if bundled is not None and sha != bundled[1]:
        name, expected = bundled
        raise WeightsError(
            f"{path}: SHA-256 mismatch for bundled model '{name}' (expected {expected[:12]}…, "
            f"got {sha[:12]}…); the installation is damaged, reinstall napari-mscgm"
        )
    metadata, stored = read_header(path)
    config = _header_config(path, metadata, kind)
    _check_architecture(path, config, kind, stored)
    state = _read_tensors(path, metadata, data_sha)
    module = kind.build(config)
    try:
        module.load_state_dict(state)
    except Exception as exc:  # e.g. a dtype that cannot be copied into float32 weights
        raise WeightsError(f"{path}: tensors do not fit the model ({first_line(exc)})") from None
    module.sha256 = sha
    return module.eval()


# ---------------------------------------------------------------- loading
def load_model(name_or_path: str | Path, device: str | torch.device | None = "auto") -> MSCGM:
    """Load a model by name (bundled, or in the user model folder), or a weights file by path.

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
        A name from :func:`~napari_mscgm.list_models` (a bundled model, or a user model:
        the stem of a file in :func:`~napari_mscgm.model_io.catalog.user_models_dir`),
        or a path.
    device : str, optional
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda[:i]"`` or ``"mps"``.
    """
    from .catalog import catalog

    checksums = bundled_checksums()
    name = str(name_or_path)
    if name in checksums:
        model = _load(model_path(name), _MSCGM, bundled=(name, checksums[name]))
        return model.to(resolve_device(device))
    path = Path(name_or_path).expanduser()
    if isinstance(name_or_path, str) and path.suffix != ".safetensors" and os.sep not in name:
        models, problems = catalog()
        if name in models:  # a user model, by name
            return _load(models[name].path, _MSCGM).to(resolve_device(device))
        if not path.exists():
            why = next((p for p in problems if Path(p.split(":")[0]).stem == name), None)
            known = ", ".join(models) or "none installed"
            raise WeightsError(why or f"{name}: no such model or weights file (models: {known})")
    if not path.exists():
        raise WeightsError(f"{path}: no such weights file")
    if path.is_dir():
        raise WeightsError(f"{path}: is a directory, not a weights file")
    if path.suffix == ".zip":  # a bioimage.io package made by export_bioimageio
        import tempfile

        from .bioimageio import read_package_weights

        with tempfile.TemporaryDirectory() as folder:
            return _load(read_package_weights(path, folder), _MSCGM).to(resolve_device(device))
    return _load(path, _MSCGM).to(resolve_device(device))


def load_care(path: str | Path, *, device: str | torch.device | None = "cpu") -> CARENet:
    """Load a CARE baseline written by :func:`save_model`, with the same checks as MSCGM's."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(f"{path}: no such CARE weights file")
    return _load(path, _CARE).to(resolve_device(device))
