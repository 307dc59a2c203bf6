"""Measure what the bridge alone adds: PSNR of LL_S against the ground truth's LL_S.

    python training/bridge_gain.py beads-sr2x /tmp/testsets/beads --limit 8

During training the bridge stage is validated through the whole pipeline with
untrained generators, which for point-like scenes is dominated by the missing
detail bands; this script isolates the coarsest band the bridge restores.
"""

import argparse

import numpy as np
import torch

from napari_mscgm import load_model
from napari_mscgm.core.noise import NoiseKey, gaussian_field
from napari_mscgm.core.normalize import PercentileNormalizer
from napari_mscgm.core.wavelets import haar_dwt2_level
from napari_mscgm.training.datasets import read_pairs

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("data")
parser.add_argument("--limit", type=int, default=8)
parser.add_argument("--steps", default="1,20")
args = parser.parse_args()

model = load_model(args.model, device="cpu")
steps_list = [int(s) for s in args.steps.split(",")]


def _normalized(image):
    """``image`` mapped by its own 1 / 99.8 percentiles (the models' normalisation)."""
    return PercentileNormalizer().fit(image).normalize(image).astype("float32")


def normalise(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(_normalized(a))[None, None]


def coarsest(a: torch.Tensor) -> torch.Tensor:
    for _ in range(model.levels):
        a, _details = haar_dwt2_level(a)
    return a


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    span = float(b.max() - b.min())
    return float(10 * np.log10(span**2 / float(((a - b) ** 2).mean())))


def restore_coarsest(condition: torch.Tensor, steps: int, key: NoiseKey) -> torch.Tensor:
    def noise(stream: int) -> torch.Tensor:
        return gaussian_field(
            [key],
            stream=stream,
            level=model.levels,
            shape=tuple(condition.shape[-2:]),
            channels=model.channels,
            device=condition.device,
        )

    with torch.no_grad():
        restored = model.bridge.sample(
            lambda x_t, t: model.unet(x_t, t, condition), condition, steps=steps, noise=noise
        )
    return model.from_bridge(restored)


rows = []
for i, (_name, low, high) in enumerate(read_pairs(args.data, scale=model.scale)[: args.limit]):
    degraded = coarsest(model.upsample(normalise(low)))
    target = coarsest(normalise(high))
    condition = model.to_bridge(degraded)
    key = NoiseKey(seed=0, sample=i)
    rows.append(
        [psnr(degraded, target)]
        + [psnr(restore_coarsest(condition, steps, key), target) for steps in steps_list]
    )
mean = np.mean(rows, axis=0)
print(f"{args.model} on {args.data} ({len(rows)} images): LL_{model.levels} PSNR (dB)")
print(f"  degraded input (bicubic)  {mean[0]:.2f}")
for steps, value in zip(steps_list, mean[1:], strict=True):
    print(f"  bridge, {steps:>4} steps   {value:.2f}")
