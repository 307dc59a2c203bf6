"""Resumable training checkpoints: safetensors tensors plus one JSON document, never a pickle.

A checkpoint holds every module's and optimiser's tensors (``model.``, ``ema.``,
``disc.``, ``opt.<name>.``), torch's RNG state, and under the header key
``mscgm_checkpoint`` the recipe, the position in it and the numpy RNG state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..io.atomic import write_bytes
from ..model_io.weights import read_header, refuse_pickle

__all__ = [
    "CHECKPOINT_KEY",
    "checkpoint_path",
    "load_checkpoint",
    "load_optimizer",
    "optimizer_tensors",
    "save_checkpoint",
]

CHECKPOINT_KEY = "mscgm_checkpoint"


def checkpoint_path(output: str | os.PathLike) -> Path:
    """Where training of ``output`` keeps its resumable checkpoint."""
    output = Path(output)
    name = output.name.removesuffix(".safetensors")
    return output.with_name(f"{name}.checkpoint.safetensors")


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write a checkpoint atomically."""
    from safetensors.torch import save

    blob = save(tensors, metadata={CHECKPOINT_KEY: json.dumps(meta, default=str)})
    return write_bytes(path, blob)


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the JSON document of a checkpoint written by :func:`save_checkpoint`."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from")
    refuse_pickle(path)
    header, _ = read_header(path)
    if CHECKPOINT_KEY not in header:
        raise InputError(f"{path}: not a napari-mscgm training checkpoint")
    return load_file(str(path)), json.loads(header[CHECKPOINT_KEY])


def optimizer_tensors(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict, list]:
    """An optimiser's state as named tensors, and its parameter groups (JSON)."""
    state = optimizer.state_dict()
    tensors = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"opt.{name}.{idx}.{key}"] = tensor.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def load_optimizer(
    name: str, optimizer: torch.optim.Optimizer, tensors: dict, groups: list
) -> None:
    """Restore what :func:`optimizer_tensors` saved."""
    state: dict[int, dict] = {}
    prefix = f"opt.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, sub = key[len(prefix) :].split(".", 1)
            state.setdefault(int(idx), {})[sub] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
