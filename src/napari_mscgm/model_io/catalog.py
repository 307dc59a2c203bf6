"""Every model a name can refer to: the bundled ones and the user's own.

User models are ``.safetensors`` files in one folder, ``user_data_dir("napari-mscgm")/models``
from :mod:`platformdirs` unless the environment variable ``NAPARI_MSCGM_MODELS`` names
another. A user model's name is its file stem. Files that cannot be used there (a name
a bundled model has, unreadable metadata, a pickle checkpoint) are left out of the
catalogue with a one-line reason each, so a bad file never breaks the listing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import MSCGMError
from . import bundled

__all__ = [
    "MODELS_ENV",
    "ModelEntry",
    "catalog",
    "list_models",
    "model_path",
    "user_models_dir",
]

#: The environment variable that overrides the user model folder.
MODELS_ENV = "NAPARI_MSCGM_MODELS"


@dataclass(frozen=True)
class ModelEntry:
    """A model a name refers to: where its file is and whether it is bundled."""

    name: str
    path: Path
    bundled: bool

    @property
    def source(self) -> str:
        return "bundled" if self.bundled else "user"


def user_models_dir() -> Path:
    """The user model folder (it need not exist yet)."""
    override = os.environ.get(MODELS_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-mscgm", appauthor=False)) / "models"


def catalog() -> tuple[dict[str, ModelEntry], list[str]]:
    """``({name: entry}, problems)``: the bundled models, then the user's usable ones.

    Each problem is one line naming a file of the user folder that was left out and why.
    """
    from .weights import _PICKLE_SUFFIXES, read_model_config

    entries = {
        name: ModelEntry(name, bundled.model_path(name), True) for name in bundled.bundled_names()
    }
    problems: list[str] = []
    folder = user_models_dir()
    if not folder.is_dir():
        if folder.exists():
            problems.append(f"{folder}: the user model folder ({MODELS_ENV}) is not a folder")
        return entries, problems
    try:
        files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        return entries, [f"{folder}: cannot list the user model folder ({exc.strerror or exc})"]
    for path in files:
        suffix = path.suffix.lower()
        if suffix in _PICKLE_SUFFIXES:
            problems.append(
                f"{path}: a pickle checkpoint, not loaded (only .safetensors weights are, "
                "because unpickling can run arbitrary code)"
            )
            continue
        if suffix != ".safetensors" or path.name.endswith(".checkpoint.safetensors"):
            continue  # other files (cards, pictures, training checkpoints) live there too
        name = path.name.removesuffix(".safetensors")
        if name in entries:
            problems.append(
                f"{path}: has the name of the bundled model {name!r}; rename the file to use it"
            )
            continue
        try:
            read_model_config(path)
        except MSCGMError as exc:
            problems.append(str(exc).splitlines()[0])
            continue
        except OSError as exc:
            problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
            continue
        entries[name] = ModelEntry(name, path, False)
    return entries, problems


def list_models() -> list[str]:
    """Names of every usable model: the bundled ones, then the user folder's (sorted)."""
    return list(catalog()[0])


def model_path(name: str) -> Path | None:
    """The weights file of the model called ``name``, or None if there is none."""
    entry = catalog()[0].get(name)
    return None if entry is None else entry.path
