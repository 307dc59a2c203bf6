"""Shared helpers: model configs for benchmarking, timing, machine description."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import torch

from napari_mscgm import MSCGM, ModelConfig
from napari_mscgm.config import GeneratorConfig, NetworksConfig, UNetConfig


def default_model(*, scale: int = 2, levels: int = 2, seed: int = 0) -> MSCGM:
    """A model with the default architecture (random weights: speed does not depend on them)."""
    torch.manual_seed(seed)
    config = ModelConfig(
        name=f"bench-s{scale}-l{levels}",
        task="super-resolution" if scale > 1 else "denoising",
        scale=scale,
        levels=levels,
        networks=NetworksConfig(generators=tuple(GeneratorConfig() for _ in range(levels))),
    )
    return MSCGM(config).eval()


def bundled_or_default(name: str | None = None, *, device: str = "cpu") -> MSCGM:
    """The bundled model ``name`` (default: the default model), else :func:`default_model`.

    Trained weights make the tiled-vs-untiled agreement meaningful, and cost the same
    time as random ones.
    """
    from napari_mscgm import list_models, load_model
    from napari_mscgm.model_io.bundled import default_model as default_name

    name = name or default_name()
    if name in list_models():
        return load_model(name, device=device).eval()
    return default_model(scale=2, levels=2).to(device)


def micro_model(*, seed: int = 0) -> MSCGM:
    """The smallest model (scale 1, 4-channel networks): the pipeline, not the networks, dominates."""
    torch.manual_seed(seed)
    config = ModelConfig(
        name="bench-micro",
        task="denoising",
        scale=1,
        levels=1,
        networks=NetworksConfig(
            unet=UNetConfig(base_channels=4, channel_mults=(1,)),
            generators=(GeneratorConfig(base_channels=4, channel_mults=(1,)),),
        ),
    )
    return MSCGM(config).eval()


class PassthroughModel(MSCGM):
    """:func:`micro_model` whose ``sample`` returns its input: the pipeline without the networks.

    Used to measure the memory of reading, tiling, blending and writing over
    stacks far too large to push through real networks on a CPU in minutes.
    """

    def sample(self, degraded, *, keys, steps=None, eta=None, callback=None):
        return degraded.clone()


def passthrough_model() -> MSCGM:
    model = micro_model()
    stub = PassthroughModel(model.config)
    stub.load_state_dict(model.state_dict())
    return stub.eval()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.processor() or platform.machine()}, {cores} CPU cores, {gpu}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    )
