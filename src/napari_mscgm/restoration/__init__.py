"""The restoration engine, one module per step of the data flow (see :mod:`.pipeline`).

:func:`restore`, :class:`MeanStd` and :func:`std_path` are imported on first use, so
that torch-free modules here (:mod:`.axes`) can be used without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["MeanStd", "restore", "std_path"]

_EXPORTS = {"MeanStd": ".spec", "restore": ".pipeline", "std_path": ".write"}

if TYPE_CHECKING:
    from .pipeline import restore
    from .spec import MeanStd
    from .write import std_path


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
