"""Training speed on this machine, before and after the efficiency work, side by side.

- **Steps.** Iterations per second of the bridge and the generator stage of the
  generalists' architecture (96-pixel crops; batch 16 and 8), as the trainer takes them:
  *before* float32 with plain AdamW, *after* bfloat16 autocast with fused AdamW (the
  recipes' ``"precision": "bfloat16"``), alternating in one run.
- **Data.** Seconds to simulate a pool of pairs with the broad simulator: one process
  (before), ``workers`` processes, and a second request served from the disk cache.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

GENERALIST_NETWORKS = {
    "unet": {"base_channels": 32, "channel_mults": [1, 2, 2], "num_res_blocks": 1},
    "generators": [
        {"base_channels": 32, "channel_mults": [1, 2, 2], "num_res_blocks": 2},
        {"base_channels": 48, "channel_mults": [1, 2, 2], "num_res_blocks": 2},
    ],
}


def _trainer(precision: str, fused: bool, device: str = "cpu"):
    from napari_mscgm.config import parse_train_config
    from napari_mscgm.training.datasets import PairPool
    from napari_mscgm.training.trainers.mscgm import MSCGMTrainer

    rng = np.random.default_rng(0)
    pool = PairPool(
        [rng.random((128, 128), dtype=np.float32) for _ in range(6)],
        [rng.random((256, 256), dtype=np.float32) for _ in range(6)],
        2,
    )
    config = parse_train_config({
        "networks": GENERALIST_NETWORKS, "crop": 96, "precision": precision,
        "data": {"validation": 2},
        "bridge": {"iterations": 10**6, "batch_size": 16},
        "generators": {"iterations": 10**6, "batch_size": 8},
    })  # fmt: skip
    trainer = MSCGMTrainer(
        config, Path(tempfile.gettempdir()) / "bench-train.safetensors", device=torch.device(device),
        init=None, pool=pool, log=None, progress=False, command="",
    )  # fmt: skip
    if not fused:  # before: torch's default AdamW
        for name, opt in trainer.optimizers.items():
            trainer.optimizers[name] = torch.optim.AdamW(opt.param_groups[0]["params"], lr=1e-4)
    return trainer


def _sync(trainer) -> None:
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)


def _steps_per_second(trainer, stage: str, n: int) -> float:
    batch = trainer.stages[stage].batch_size
    with trainer.autocast():
        trainer.step(stage, batch)  # warm-up
        _sync(trainer)
        start = time.perf_counter()
        for i in range(n):
            trainer.iteration = i
            trainer.step(stage, batch)
        _sync(trainer)
    return n / (time.perf_counter() - start)


def _data_rows(n: int, workers: int) -> list[dict]:
    from napari_mscgm.simulate import preset_config
    from napari_mscgm.training.simulated import simulated_pool

    config = preset_config("fluo")
    cache = Path(tempfile.mkdtemp(prefix="bench-pairs-"))
    rows = []
    try:
        for label, kwargs in (
            ("1 process (before)", {"workers": 1}),
            (f"{workers} processes", {"workers": workers, "cache_dir": cache}),
            ("from the disk cache", {"workers": workers, "cache_dir": cache}),
        ):
            start = time.perf_counter()
            simulated_pool(config, n=n, shape=256, seed=5, **kwargs)
            seconds = time.perf_counter() - start
            rows.append({"benchmark": "training data", "pairs": n, "how": label,
                         "seconds": round(seconds, 2), "pairs_per_s": round(n / seconds, 2)})  # fmt: skip
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return rows


def run(*, steps: int = 20, pairs: int = 64, workers: int = 2, device: str = "cpu") -> list[dict]:
    settings = {"before (float32, AdamW)": ("float32", False),
                "after (bfloat16, fused AdamW)": ("bfloat16", True)}  # fmt: skip
    trainers = {label: _trainer(*s, device=device) for label, s in settings.items()}
    speeds: dict[tuple[str, str], list[float]] = {}
    for _ in range(2):  # alternate: the machine's load falls on both alike
        for stage in ("bridge", "generators"):
            for label, trainer in trainers.items():
                speeds.setdefault((label, stage), []).append(
                    _steps_per_second(trainer, stage, steps)
                )
    rows = []
    for stage in ("bridge", "generators"):
        base = float(np.median(speeds[("before (float32, AdamW)", stage)]))
        for label in settings:
            speed = float(np.median(speeds[(label, stage)]))
            rows.append({"benchmark": "training steps", "stage": stage, "settings": label,
                         "device": device, "threads": torch.get_num_threads(), "it_per_s": round(speed, 2),
                         "speed-up": f"{speed / base:.2f}x"})  # fmt: skip
    with contextlib.suppress(Exception):
        del trainers
    return rows + _data_rows(pairs, workers)
