"""MSCGM vs full-resolution BBDP with the same U-Net and the same number of steps.

Both run the default U-Net (random weights: the speed does not depend on them)
for ``steps`` reverse Brownian-bridge steps on one image of ``size``² target
pixels: MSCGM on ``LL_S`` (``size / 2**S``)² plus one pass of each detail
generator; the baseline on the full-resolution image. The paper claims up to
16× at S = 2 (the bridge sees 16× fewer pixels).
"""

from __future__ import annotations

import torch

from napari_mscgm.core.noise import NoiseKey

from ._common import default_model, timed


def _synced(fn, device: torch.device):
    def run():
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    return run


def run(
    *, size: int = 512, steps: int = 20, levels: tuple[int, ...] = (2, 3), device: str = "cpu"
) -> list[dict]:
    rows = []
    device = torch.device(device)
    image = torch.rand(1, 1, size, size, device=device)
    for s in levels:
        model = default_model(scale=1, levels=s).to(device)
        keys = [NoiseKey(seed=0)]
        with torch.no_grad():
            model.sample(image[..., :64, :64], keys=keys, steps=1)  # warm-up (kernel selection)
            t_mscgm, _ = timed(
                _synced(
                    lambda m=model, k=keys: m.sample(image, keys=k, steps=steps, eta=1.0), device
                )
            )

            condition = model.to_bridge(image)
            generator = torch.Generator(device=device).manual_seed(0)

            def full(m=model, c=condition, g=generator):
                return m.bridge.sample(
                    lambda x, t: m.unet(x, t, c),
                    c,
                    steps=steps,
                    eta=1.0,
                    noise=lambda i: torch.randn(c.shape, generator=g, device=c.device),
                )

            t_full, _ = timed(_synced(full, device))
        rows.append(
            {
                "benchmark": "speedup",
                "device": str(device),
                "levels": s,
                "size": size,
                "steps": steps,
                "mscgm_s": round(t_mscgm, 3),
                "full_bbdp_s": round(t_full, 3),
                "speedup": round(t_full / t_mscgm, 2),
            }
        )
    return rows
