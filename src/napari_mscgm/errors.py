"""Typed exceptions of napari-mscgm.

Every error a user can cause derives from :class:`MSCGMError`; the CLI turns
these into one line on stderr and exit code 2, the widget into a notification.
Anything else is a bug (exit code 1).
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "MSCGMError",
    "OutputError",
    "ResourceError",
    "WeightsError",
    "first_line",
]


class MSCGMError(Exception):
    """Base class of all expected, user-facing errors."""


class InputError(MSCGMError, ValueError):
    """The input image, its axes or a parameter cannot be processed."""


class WeightsError(MSCGMError, ValueError):
    """A weights file is missing, unsafe, corrupted or incompatible."""


class OutputError(MSCGMError, OSError):
    """The output cannot be written where asked."""


class ResourceError(MSCGMError, MemoryError):
    """The run would need more memory than this machine has; the message says what to change."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
