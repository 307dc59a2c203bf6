"""Shipping the model to dask.distributed workers: a picklable recipe, built once per process.

Each worker builds the model the first time a task needs it and keeps it in a
cache keyed by the weights' identity and the device, so a cluster loads a model
once per worker, not once per tile.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import numpy as np
import torch

from ..device import set_threads

__all__ = ["ModelSpec", "resolve_model"]


class ModelSpec:
    """A picklable recipe for a model: its config JSON and state dict.

    ``token`` is the weights' SHA-256, or a digest of the in-memory state for a model
    that was never saved.
    """

    def __init__(self, model: Any) -> None:
        self.config_json = model.metadata_json()
        self.state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        self.sha256 = model.sha256
        if model.sha256:
            self.token = model.sha256
        else:
            digest = hashlib.sha256(self.config_json.encode())
            for k in sorted(self.state):
                digest.update(k.encode())
                digest.update(np.ascontiguousarray(self.state[k]).tobytes())
            self.token = digest.hexdigest()

    def build(self, device: str) -> Any:
        """The model on ``device`` (on the worker's own torch)."""
        from ..config import ModelConfig
        from ..core.mscgm import MSCGM
        from ..device import resolve_device

        model = MSCGM(ModelConfig.model_validate_json(self.config_json))
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.state.items()})
        model.sha256 = self.sha256
        return model.eval().to(resolve_device(device))


# A process-wide cache by nature: a worker process keeps the models its tasks built.
_MODEL_CACHE: dict[tuple[str, str], Any] = {}
_MODEL_LOCK = threading.Lock()


def resolve_model(spec: Any, device: str, threads: int | None = None) -> Any:
    """The model a task runs: ``spec`` itself if it is a model, else the cached build of it.

    On a worker, ``threads`` (the run's ``threads=`` option) sets torch's thread count
    there too; the client process set its own already.
    """
    if not isinstance(spec, ModelSpec):
        return spec
    set_threads(threads)
    key = (spec.token, device)
    with _MODEL_LOCK:
        model = _MODEL_CACHE.get(key)
        if model is None:
            model = _MODEL_CACHE[key] = spec.build(device)
    return model
