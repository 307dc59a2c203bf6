"""The comparison run: every method on every ``(name, low, high)`` pair, scored the same way."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.atomic import write_text
from .metrics import care_metrics

__all__ = ["EvaluationResult", "Method", "evaluate", "write_csv", "write_results"]


@dataclass
class EvaluationResult:
    """Per-image and mean metrics of every method.

    Attributes
    ----------
    rows : list of dict
        One row per (image, method): ``image``, ``method``, ``psnr``, ``ssim``, ``seconds``.
    summary : dict
        ``{method: {"psnr": mean, "ssim": mean, "seconds": mean per image, "n": count}}``.
    """

    rows: list[dict]
    summary: dict[str, dict[str, float]]

    def table(self) -> str:
        """The summary as a plain-text table."""
        lines = [f"{'method':<18} {'PSNR (dB)':>10} {'SSIM':>7} {'s/image':>8}"]
        for method, s in self.summary.items():
            lines.append(f"{method:<18} {s['psnr']:>10.2f} {s['ssim']:>7.3f} {s['seconds']:>8.3f}")
        return "\n".join(lines)


Method = Callable[[np.ndarray], np.ndarray]


def evaluate(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    methods: dict[str, Method],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Run every method on every ``(name, low, high)`` pair and score it (CARE metrics).

    Parameters
    ----------
    pairs : sequence of (str, numpy.ndarray, numpy.ndarray)
        Image name, 2D input and 2D ground truth on the target grid.
    methods : dict
        ``{name: function(low) -> prediction on the target grid}``.
    progress : callable, optional
        ``progress(done, total)`` after each image.
    """
    rows = []
    for i, (name, low, high) in enumerate(pairs):
        for method, fn in methods.items():
            start = time.perf_counter()
            prediction = np.asarray(fn(low))
            seconds = time.perf_counter() - start
            psnr, ssim = care_metrics(prediction, high)
            rows.append(
                {"image": name, "method": method, "psnr": psnr, "ssim": ssim, "seconds": seconds}
            )
        if progress is not None:
            progress(i + 1, len(pairs))
    summary = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        summary[method] = {
            "psnr": float(np.mean([r["psnr"] for r in mine])),
            "ssim": float(np.mean([r["ssim"] for r in mine])),
            "seconds": float(np.mean([r["seconds"] for r in mine])),
            "n": len(mine),
        }
    return EvaluationResult(rows, summary)


def write_results(
    result: EvaluationResult, directory: str | os.PathLike, *, info: dict | None = None
) -> tuple[Path, Path]:
    """Write ``metrics.csv`` (per image) and ``metrics.json`` (summary, rows, ``info``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(directory / "metrics.csv", result.rows)
    document = {"summary": result.summary, "rows": result.rows, "info": info or {}}
    json_path = write_text(directory / "metrics.json", json.dumps(document, indent=2))
    return csv_path, json_path


def write_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write ``rows`` (dicts with the same keys) as a CSV file, atomically."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())
