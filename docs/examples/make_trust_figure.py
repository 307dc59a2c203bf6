"""The picture of docs/usage.md, "When to trust the result": a consistent and an inconsistent case.

The bundled cell sample restored by the generalist (``fluo-sr2x``) and by one made
for beads (``beads-sr2x``): the input, the restoration, and the consistency map (the
noise-normalised difference between the input and the restoration degraded back to it;
blue and red beyond ±3 contradict the data), with the verdict and the scores as titles.

Run from the repository root::

    python docs/examples/make_trust_figure.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from napari_mscgm import check_consistency, load_model, restore
from napari_mscgm.evaluation.baselines import nearest
from napari_mscgm.samples import load_sample

OUT = Path(__file__).resolve().parents[1] / "images" / "trust.png"
CASES = ("fluo-sr2x", "beads-sr2x")
SIZE = 256  # pixels per panel
TITLE_PX = 34


def grey(image: np.ndarray) -> Image.Image:
    lo, hi = np.percentile(image, [0.5, 99.8])
    scaled = np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1)
    return Image.fromarray((scaled * 255).astype(np.uint8)).convert("RGB").resize((SIZE, SIZE))


def diverging(z: np.ndarray, limit: float = 5.0) -> Image.Image:
    """Blue (negative) – white – red (positive), saturating at ±limit."""
    t = np.clip(z / limit, -1, 1)
    red = np.where(t > 0, 1.0, 1.0 + t)
    blue = np.where(t < 0, 1.0, 1.0 - t)
    green = 1.0 - np.abs(t)
    rgb = (np.stack([red, green, blue], axis=-1) * 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((SIZE, SIZE), Image.NEAREST)


def font(size: int = 13) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def main() -> None:
    image, _ = load_sample("cells_low")
    figure = Image.new("RGB", (3 * (SIZE + 4), len(CASES) * (SIZE + TITLE_PX + 4)), "white")
    draw = ImageDraw.Draw(figure)
    for row, name in enumerate(CASES):
        model = load_model(name, device="cpu")
        restored = restore(image, model, seed=0)
        checked = check_consistency(image, restored, model, with_map=True)
        r = checked.record
        panels = [
            (grey(nearest(image, scale=2)), "input (10x/0.4 NA)"),
            (grey(restored), f"{name}"),
            (
                diverging(checked.map),
                f"{r['verdict']}: {100 * r['inconsistent_fraction']:.0f} % "
                f"beyond noise, RSP {r['rsp']:.2f}",
            ),
        ]
        y = row * (SIZE + TITLE_PX + 4) + 2
        for col, (panel, title) in enumerate(panels):
            x = col * (SIZE + 4) + 2
            draw.text((x + 3, y + 3), title, fill="black", font=font())
            figure.paste(panel, (x, y + TITLE_PX))
        print(name, r)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    figure.save(OUT, optimize=True)
    print(f"{OUT}: {OUT.stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
