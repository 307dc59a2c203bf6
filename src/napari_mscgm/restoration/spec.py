"""What every tile task of a run needs besides its pixels: small, and picklable to workers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..config import CalibrationConfig, RestoreOptions
from ..core.normalize import PercentileNormalizer
from .batching import OOMPolicy
from .layout import AxisPlan

__all__ = ["MeanStd", "Progress", "RunSpec"]


class MeanStd(NamedTuple):
    """Per-pixel mean and standard deviation over ``samples`` restorations."""

    mean: Any
    std: Any


class Progress:
    """Thread-safe ``progress(done, total)`` counter over forward passes."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0
        self._lock = threading.Lock()

    def tick(self) -> None:
        if self.callback is None:
            return
        with self._lock:
            self.done += 1
            done = min(self.done, self.total)
        self.callback(done, self.total)

    def __reduce__(self):  # callbacks stay on the client; workers report nothing
        return (Progress, (None, self.total))


@dataclass
class RunSpec:
    """One run's options, normalisation and tile layout.

    ``steps`` and ``eta`` are the values the model uses (its defaults resolved, steps
    capped at the bridge's ``T``); everything else comes from ``options`` unchanged.
    """

    options: RestoreOptions
    steps: int
    eta: float
    normalizer: PercentileNormalizer
    scale: int
    ys: AxisPlan
    xs: AxisPlan
    device: str
    calibration: CalibrationConfig | None = None
    progress: Progress = field(default_factory=lambda: Progress(None, 0))
    oom: OOMPolicy | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.oom is None:
            self.oom = OOMPolicy(self.options.batch_size)

    @property
    def seed(self) -> int:
        return self.options.seed

    @property
    def samples(self) -> int:
        return self.options.samples

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    @property
    def precision(self) -> str:
        return self.options.precision

    def forward_passes(self, group: int) -> int:
        """Number of forward passes (``progress`` ticks) of one plane, before any OOM retry."""
        total = 0
        for _ in self.ys.tiles:
            for g0 in range(0, len(self.xs.tiles), group):
                widths: dict[int, int] = {}
                for x0, x1 in self.xs.tiles[g0 : g0 + group]:
                    widths[x1 - x0] = widths.get(x1 - x0, 0) + 1
                total += sum(-(-n * self.samples // self.batch_size) for n in widths.values())
        return total
