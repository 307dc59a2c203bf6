"""Benchmarks of napari-mscgm: ``python -m benchmarks`` or ``napari-mscgm benchmark``.

Each benchmark measures the quantities it compares side by side in one run and
reports ratios, so the numbers are comparable on any machine. Results are
printed as a Markdown table (and optionally saved as JSON); docs/benchmarks.md
records the commands and the numbers of a reference run.
"""

BENCHMARKS = (
    "speedup", "throughput", "tiling", "memory", "consistency", "training", "finetune",
)  # fmt: skip
