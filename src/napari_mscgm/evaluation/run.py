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
from typing import Any

import numpy as np

from ..io.atomic import write_text
from .metrics import care_metrics, hf_error_ratio, is_empty_field

__all__ = ["MEASURES", "EvaluationResult", "Method", "evaluate", "write_csv", "write_results"]


#: What every method is scored on, per image.
MEASURES = ("psnr", "ssim", "hf_error", "seconds", "seconds_per_mp")


@dataclass
class EvaluationResult:
    """Per-image and mean scores of every method on every set.

    Attributes
    ----------
    rows : list of dict
        One row per (set, image, method): ``set``, ``image``, ``method``, the
        :data:`MEASURES`, and what a method adds (MSCGM: the consistency verdict, and with
        several samples the uncertainty's coverage and Spearman correlation).
    summary : dict
        ``{set: {method: {measure: mean, ..., "n": count}}}``; a verdict column becomes
        ``inconsistent_rate``. Empty fields (a constant ground truth) have no PSNR, SSIM
        or HF-error and are left out of those means.
    """

    rows: list[dict]
    summary: dict[str, dict[str, dict[str, float]]]

    def table(self, name: str) -> str:
        """One set's summary as a plain-text table."""
        lines = [f"{'method':<22} {'PSNR (dB)':>9} {'SSIM':>6} {'HF-err':>7} {'s/MP':>7}  other"]
        for method, s in self.summary[name].items():
            other = ", ".join(
                f"{k} {v:.3g}" for k, v in s.items() if k not in (*MEASURES, "n", "seconds")
            )
            cells = (_cell(s["psnr"], 9, ".2f"), _cell(s["ssim"], 6, ".3f"),
                     _cell(s["hf_error"], 7, ".3f"), _cell(s["seconds_per_mp"], 7, ".2f"))  # fmt: skip
            lines.append(f"{method:<22} {' '.join(cells)}  {other}")
        return "\n".join(lines)


def _cell(value: float | None, width: int, spec: str) -> str:
    return f"{'–' if value is None else format(value, spec):>{width}}"


Method = Callable[[np.ndarray], np.ndarray]


def _score(method: Any, low: np.ndarray, high: np.ndarray) -> dict:
    start = time.perf_counter()
    # A reference (the Fourier oracle) is handed the ground truth itself.
    prediction = np.asarray(
        method(low, high) if getattr(method, "given_truth", False) else method(low)
    )
    seconds = time.perf_counter() - start
    empty = is_empty_field(high)  # left out of the means rather than counted as infinite
    psnr, ssim = (None, None) if empty else care_metrics(prediction, high)
    row = {
        "psnr": psnr,
        "ssim": ssim,
        "hf_error": None if empty else hf_error_ratio(prediction, high),
        "seconds": seconds,
        "seconds_per_mp": seconds / (prediction.size / 1e6),
    }
    extra = getattr(method, "extra", None)  # a method's own measures (MSCGM's)
    if extra is not None:
        row.update(extra(low, high, prediction))
    return row


def _summary(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in dict.fromkeys(k for row in rows for k in row):
        values = [r[key] for r in rows if r.get(key) is not None]
        if key == "verdict":
            out["inconsistent_rate"] = float(np.mean([v == "inconsistent" for v in values]))
        elif values and isinstance(values[0], int | float) and not isinstance(values[0], bool):
            out[key] = float(np.mean(values))
        elif key in MEASURES:
            out[key] = None  # every image of the set was an empty field
    out["n"] = len(rows)
    return out


def evaluate(
    sets: dict[str, Sequence[tuple[str, np.ndarray, np.ndarray]]],
    methods: dict[str, Method],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Run every method on every ``(name, low, high)`` pair of every set, and score it.

    Parameters
    ----------
    sets : dict
        ``{set name: pairs}``; a pair is an image name, the 2D input and the 2D ground
        truth on the target grid.
    methods : dict
        ``{name: function(low) -> prediction on the target grid}``; a function with an
        ``extra(low, high, prediction) -> dict`` method adds its own columns.
    progress : callable, optional
        ``progress(done, total)`` after each image.
    """
    rows, done = [], 0
    total = sum(len(pairs) for pairs in sets.values())
    for set_name, pairs in sets.items():
        for name, low, high in pairs:
            for method, fn in methods.items():
                rows.append({"set": set_name, "image": name, "method": method,
                             **_score(fn, low, high)})  # fmt: skip
            done += 1
            if progress is not None:
                progress(done, total)
    summary = {
        set_name: {
            method: _summary([r for r in rows if r["set"] == set_name and r["method"] == method])
            for method in methods
        }
        for set_name in sets
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
    fields = list(dict.fromkeys(k for row in rows for k in row))  # every column, in order
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())
