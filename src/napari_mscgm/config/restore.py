"""What a restoration is asked to do: one validated object for the API, the CLI and the widget.

:class:`RestoreOptions` checks every option once, with the messages users see; the
restoration never re-checks them. ``steps`` and ``eta`` left at None mean the
model's defaults (the only place they are defined is the model's config).
"""

from __future__ import annotations

import math
import numbers
import re
import secrets
from typing import Any, Literal

from pydantic import ValidationError, field_validator, model_validator

from ..errors import InputError
from ._base import Strict, first_error

__all__ = ["SEED_LIMIT", "RestoreOptions"]

#: Seeds are integers in [0, SEED_LIMIT).
SEED_LIMIT = 2**64
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _integer(name: str, value: Any, minimum: int, *, unit: str = "") -> int:
    """``value`` as an int of at least ``minimum``; integral floats (``32.0``) pass."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, numbers.Integral):
        if not math.isfinite(value) or not float(value).is_integer():
            raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}{unit}, got {value}")
    return value


class RestoreOptions(Strict):
    """Options of one restoration, validated on construction.

    Constructing one with a bad value raises :class:`~napari_mscgm.errors.InputError`
    with a one-line message naming the option. See :func:`napari_mscgm.restore` for
    what each option means.
    """

    steps: int | None = None
    seed: int | None = 0
    eta: float | None = None
    samples: int = 1
    axes: str | None = None
    tile_size: int | None = 256
    overlap: int = 32
    device: str | None = None
    batch_size: int = 4
    precision: Literal["float32", "bfloat16"] = "float32"
    threads: int | None = None
    pixel_size_um: tuple[float | None, float | None, float | None] | None = None
    consistency: bool = True
    consistency_map: bool = False

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InputError(first_error(exc, location=False)) from None

    # ------------------------------------------------------------------ fields
    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value: Any) -> int | None:
        return None if value is None else _integer("steps", value, 1)

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, value: Any) -> int:
        if value is None:  # a random seed, recorded like any other
            return secrets.randbits(32)
        value = _integer("seed", value, 0)
        if value >= SEED_LIMIT:
            raise ValueError(f"seed must be an integer in [0, 2**64), got {value}")
        return value

    @field_validator("eta", mode="before")
    @classmethod
    def _eta(cls, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"eta must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"eta must be a finite number >= 0, got {value}")
        return value

    @field_validator("samples", "batch_size", mode="before")
    @classmethod
    def _at_least_one(cls, value: Any, info: Any) -> int:
        return _integer(info.field_name, value, 1)

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> int | None:
        return None if value is None else _integer("threads", value, 1)

    @field_validator("tile_size", mode="before")
    @classmethod
    def _tile_size(cls, value: Any) -> int | None:
        if value is None:
            return None
        return _integer("tile_size", value, 16, unit=" input pixels (or None)")

    @field_validator("overlap", mode="before")
    @classmethod
    def _overlap(cls, value: Any) -> int:
        return _integer("overlap", value, 0)

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, value: Any) -> str:
        if value not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be 'float32' or 'bfloat16', got {value!r}")
        return value

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value)  # a torch.device, or a string
        if not _DEVICE.fullmatch(text):
            raise ValueError(f"unknown device {text!r}; use auto, cpu, cuda[:i] or mps")
        return text

    @field_validator("axes", mode="before")
    @classmethod
    def _axes(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"axes must be a string of letters from TCZYX, got {value!r}")
        axes = value.upper()
        bad = sorted(set(axes) - set("TCZYX"))
        if bad:
            raise ValueError(
                f"axes {axes!r} contains {''.join(bad)!r}; use letters from T, C, Z, Y, X"
            )
        if len(set(axes)) != len(axes):
            raise ValueError(f"axes {axes!r} repeats a letter")
        if not ("Y" in axes and "X" in axes):
            raise ValueError(f"axes {axes!r} must contain Y and X")
        return axes

    @field_validator("pixel_size_um", mode="before")
    @classmethod
    def _pixel_size(cls, sizes: Any) -> tuple | None:
        if sizes is None:
            return None
        try:
            values = tuple(sizes)
        except TypeError:
            values = ()
        if len(values) != 3:
            raise ValueError(f"pixel_size_um must be (z, y, x) in µm, got {sizes!r}")
        for v in values:
            ok = v is None or (
                isinstance(v, numbers.Real)
                and not isinstance(v, bool)
                and math.isfinite(v)
                and v > 0
            )
            if not ok:
                raise ValueError(
                    f"pixel_size_um values must be positive numbers or None, got {sizes!r}"
                )
        return tuple(None if v is None else float(v) for v in values)

    @model_validator(mode="after")
    def _overlap_fits(self) -> RestoreOptions:
        if self.tile_size is not None and 2 * self.overlap > self.tile_size:
            raise ValueError(
                f"overlap {self.overlap} must be at most half of tile_size {self.tile_size}"
            )
        return self
