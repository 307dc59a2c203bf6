"""Choice of the torch device and CPU threading."""

from __future__ import annotations

import os

import torch

from .errors import InputError

__all__ = ["available_devices", "resolve_device"]


def available_devices() -> list[str]:
    """Devices this machine can run on, best first (``cuda:N``…, ``mps``, ``cpu``)."""
    devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda[:i]"`` or ``"mps"`` into a usable device.

    ``"auto"`` (or ``None``) picks CUDA, then MPS, then the CPU. On the CPU torch is
    allowed every core this process may run on.
    """
    if device is None or str(device) == "auto":
        chosen = torch.device(available_devices()[0])
    else:
        try:
            chosen = torch.device(device)
        except RuntimeError as exc:
            raise InputError(f"unknown device {device!r}; use auto, cpu, cuda[:i] or mps") from exc
        if chosen.type == "cuda":
            if not torch.cuda.is_available():
                raise InputError(f"device {device!r} requested but CUDA is not available here")
            if chosen.index is not None and chosen.index >= torch.cuda.device_count():
                raise InputError(
                    f"device {device!r} requested but only {torch.cuda.device_count()} "
                    "CUDA device(s) exist"
                )
        elif chosen.type == "mps" and "mps" not in available_devices():
            raise InputError("device 'mps' requested but MPS is not available here")
        elif chosen.type not in ("cpu", "cuda", "mps"):
            raise InputError(f"unsupported device {device!r}; use auto, cpu, cuda[:i] or mps")
    if chosen.type == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if cores and torch.get_num_threads() != cores:
            torch.set_num_threads(cores)
    return chosen
