"""The models shipped inside the package (``napari_mscgm/models``), each with a SHA-256."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

__all__ = [
    "DEFAULT_MODEL",
    "bundled_checksums",
    "bundled_dir",
    "bundled_names",
    "default_model",
    "file_digests",
    "file_sha256",
    "model_path",
]

#: The model the widget, the CLI and the demo use unless told otherwise: the generalist.
DEFAULT_MODEL = "fluo-sr2x"


def bundled_dir() -> Path:
    """The folder of the bundled weights."""
    return Path(str(resources.files("napari_mscgm") / "models"))


def bundled_checksums() -> dict[str, str]:
    """``{name: sha256}`` of the bundled models, from ``models/SHA256SUMS``."""
    sums = bundled_dir() / "SHA256SUMS"
    if not sums.is_file():
        return {}
    out = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, filename = line.split()
            out[filename.removesuffix(".safetensors")] = digest
    return out


def bundled_names() -> list[str]:
    """Names of the models bundled with the package (every model: ``catalog.list_models``)."""
    return sorted(bundled_checksums())


def default_model() -> str | None:
    """:data:`DEFAULT_MODEL` when it is bundled, else the first bundled model (or None)."""
    names = bundled_names()
    if DEFAULT_MODEL in names:
        return DEFAULT_MODEL
    return names[0] if names else None


def model_path(name: str) -> Path:
    """Path of a bundled model's weights file."""
    return bundled_dir() / f"{name}.safetensors"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a whole file (what ``models/SHA256SUMS`` lists)."""
    return file_digests(Path(path))[0]


def file_digests(path: Path) -> tuple[str, str]:
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
