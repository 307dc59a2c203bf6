"""Find which part of a model limits it: swap its bands with the ground truth's.

    python training/band_swap.py cells-sr2x /tmp/testsets/cells --limit 8

Restores each low/ image at 1 step, splits the result and the ground truth into
LL_S and the detail bands, and scores (CARE-style PSNR/SSIM, as `evaluate`):

- the model's output as is, and the mean of 4 samples;
- the ground truth's LL_S with the model's details (how good the generators are);
- the model's LL_S with the ground truth's details (how good the bridge is);
- the model's LL_S with no details, and with only the coarser details;
- the ground truth with its finest detail band set to zero (for 2x models: all the
  input's pixel grid can hold, an oracle), and with the model's finest band instead.
"""

import argparse

import numpy as np
import torch

from napari_mscgm import load_model
from napari_mscgm.core.noise import NoiseKey
from napari_mscgm.core.normalize import PercentileNormalizer
from napari_mscgm.core.wavelets import haar_dwt2_level, haar_idwt2_level
from napari_mscgm.evaluation.metrics import care_metrics
from napari_mscgm.training.datasets import read_pairs

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("data")
parser.add_argument("--limit", type=int, default=8)
args = parser.parse_args()

model = load_model(args.model, device="cpu")
levels = model.levels


def _normalized(image):
    """``image`` mapped by its own 1 / 99.8 percentiles (the models' normalisation)."""
    return PercentileNormalizer().fit(image).normalize(image).astype("float32")


def split(a: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    details = []
    for _ in range(levels):
        a, d = haar_dwt2_level(a)
        details.append(d)
    return a, details


def merge(ll: torch.Tensor, details: list[torch.Tensor]) -> np.ndarray:
    for d in reversed(details):
        ll = haar_idwt2_level(ll, d)
    return ll[0, 0].numpy()


rows = []
for _name, low, high in read_pairs(args.data, scale=model.scale)[: args.limit]:
    y = model.upsample(torch.from_numpy(_normalized(low))[None, None])
    with torch.no_grad():
        outs = [
            model.sample(y, keys=[NoiseKey(seed=s, sample=0)], steps=1)[0, 0].numpy()
            for s in range(4)
        ]
    ll_m, d_m = split(torch.from_numpy(outs[0])[None, None])
    ll_x, d_x = split(torch.from_numpy(_normalized(high))[None, None])
    no_details = [torch.zeros_like(d) for d in d_m]
    rows.append(
        {
            "model (1 sample)": care_metrics(outs[0], high),
            "mean of 4 samples": care_metrics(np.mean(outs, axis=0), high),
            "truth LL + model details": care_metrics(merge(ll_x, d_m), high),
            "model LL + truth details": care_metrics(merge(ll_m, d_x), high),
            "model LL, no details": care_metrics(merge(ll_m, no_details), high),
            "model LL, coarser details only": care_metrics(
                merge(ll_m, [no_details[0], *d_m[1:]]), high
            ),
            "truth, finest band zero": care_metrics(merge(ll_x, [no_details[0], *d_x[1:]]), high),
            "truth, model's finest band": care_metrics(merge(ll_x, [d_m[0], *d_x[1:]]), high),
        }
    )

print(f"{args.model} on {args.data} ({len(rows)} images)")
for key in rows[0]:
    psnr = np.mean([r[key][0] for r in rows])
    ssim = np.mean([r[key][1] for r in rows])
    print(f"  {key:32s} PSNR {psnr:6.2f} dB  SSIM {ssim:.3f}")
