"""Choice of the torch device and CPU threading."""

from __future__ import annotations

import os

import torch

from .errors import InputError

__all__ = ["available_devices", "available_memory", "resolve_device", "set_threads"]


def available_devices() -> list[str]:
    """Devices this machine can run on, best first (``cuda:N``…, ``mps``, ``cpu``)."""
    devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def available_memory() -> int | None:
    """Bytes of CPU memory this process can still allocate, or None when unknown.

    Linux: ``MemAvailable`` of ``/proc/meminfo``, capped by the cgroup (container)
    limit when one is set, since ``/proc/meminfo`` shows the host's memory.
    Elsewhere: free physical pages from ``os.sysconf`` where the platform has them.
    """
    available = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    limit = _cgroup_headroom()
    return available if limit is None else min(available, limit)


def _cgroup_headroom() -> int | None:
    """Memory left under the cgroup (v2, else v1) limit of this process; None without a limit."""
    candidates = []
    try:
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                if line.startswith("0::"):
                    relative = line.strip()[3:].lstrip("/")
                    candidates.append(os.path.join("/sys/fs/cgroup", relative, "memory.max"))
    except OSError:
        pass
    # Inside a container the process's own cgroup is usually mounted at the root.
    candidates += ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
    for limit_file in candidates:
        usage_file = os.path.join(
            os.path.dirname(limit_file),
            "memory.current" if limit_file.endswith(".max") else "memory.usage_in_bytes",
        )
        try:
            with open(limit_file) as fh:
                text = fh.read().strip()
            if text == "max" or int(text) >= 2**60:  # v1 writes "no limit" as a huge number
                return None
            with open(usage_file) as fh:
                return max(0, int(text) - int(fh.read()))
        except (OSError, ValueError):
            continue
    return None


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda[:i]"`` or ``"mps"`` into a usable device.

    ``"auto"`` (or ``None``) picks CUDA, then MPS, then the CPU. Torch's thread count
    is left alone: the caller's (or a dask worker's) choice stands; see :func:`set_threads`.
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
    return chosen


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads in torch; None leaves torch's setting as it is.

    Only where the user asked for a number (``--threads``, a ``threads=`` argument):
    the library never changes the thread count on its own.
    """
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive integer, got {threads!r}")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
