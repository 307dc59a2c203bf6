"""The pictures of a model card: every structure class, input / restoration / truth / std.

    python training/card_figures.py fluo-sr2x

For each class, the first image of its ``-low`` held-out set (training/eval-data, made by
``bash training/evaluate.sh sets``), restored by the bundled model at its default steps
with 8 samples (mean and calibrated std). Writes docs/images/models/<model>.png.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from napari_mscgm import load_model, restore
from napari_mscgm.evaluation.baselines import nearest
from napari_mscgm.training.datasets import read_pairs

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("beads filaments cells nuclei actin microtubules er mitochondria puncta membranes "
           "tissue sparse").split()  # fmt: skip
PANEL, LABEL = 160, 18
COLUMNS = ("input", "restoration", "ground truth", "std")

parser = argparse.ArgumentParser()
parser.add_argument("name")
parser.add_argument("--snr", default="low", choices=("low", "high"))
args = parser.parse_args()
model = load_model(args.name, device="cpu")
task = "sr" if model.scale > 1 else "dn"


def grey(image: np.ndarray, lo: float, hi: float) -> Image.Image:
    scaled = np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1)
    return Image.fromarray((scaled * 255).astype(np.uint8)).resize((PANEL, PANEL))


sheet = Image.new("L", (LABEL * 5 + PANEL * 4, LABEL + PANEL * len(CLASSES)), 255)
draw = ImageDraw.Draw(sheet)
for j, title in enumerate(COLUMNS):
    draw.text((LABEL * 5 + j * PANEL + 4, 3), title, fill=0)
for i, name in enumerate(CLASSES):
    _, low, high = read_pairs(ROOT / "training/eval-data" / task / f"{name}-{args.snr}",
                              scale=model.scale)[0]  # fmt: skip
    mean, std = restore(low, model, samples=8, seed=0, axes="YX", consistency=False)
    crop = (slice(0, 128), slice(0, 128))  # 128² target pixels: 42 µm at 0.325 µm
    # The restoration and the truth share one intensity scale after an affine fit.
    a, b = np.polyfit(mean.ravel(), high.ravel(), 1)
    fitted = a * mean + b
    lo, hi = np.percentile(high, [0.5, 99.8])
    raw = nearest(low, scale=model.scale)
    panels = (
        grey(raw[crop], *np.percentile(raw, [0.5, 99.8])),
        grey(fitted[crop], lo, hi),
        grey(high[crop], lo, hi),
        grey(a * std[crop], 0, float(np.percentile(a * std, 99.8))),
    )
    y = LABEL + i * PANEL
    draw.text((3, y + PANEL // 2), name, fill=0)
    for j, panel in enumerate(panels):
        sheet.paste(panel, (LABEL * 5 + j * PANEL, y))
out = ROOT / "docs" / "images" / "models" / f"{args.name}.png"
out.parent.mkdir(parents=True, exist_ok=True)
sheet.save(out, optimize=True)
print(out)
