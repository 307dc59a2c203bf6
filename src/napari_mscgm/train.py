"""Training MSCGM (and the CARE-like baseline) on paired data.

Stage 1, the bridge: the time-conditioned U-Net learns BBDM's "grad" target
``x_t − x0`` with an L1 loss, where ``x0`` is the clean ``LL_S`` and ``y`` the
degraded one, both in bridge space (:meth:`MSCGM.to_bridge`).

Stage 2, the generators: scale by scale from ``k = S`` to 1, generator ``k``
gets ``LL_k`` (the clean one at the top, then the detached output of the
coarser scale, as at inference), the degraded bands at that scale and a noise
map, and predicts the three detail bands. Its loss, on the inverse-transformed
image at scale ``k − 1`` (WMGM's weights)::

    alpha · (−mean σ(D(fake))) + lambda · MSE + nu · (1 − SSIM)

and the bounded WGAN-like critic ``D`` minimises ``mean σ(D(fake)) − mean σ(D(real))``,
updated every ``d_every`` generator steps with its own, smaller learning rate.

Both stages use AdamW and keep an exponential moving average (EMA) of the
weights; the EMA weights are what is saved. Checkpoints are safetensors too
(weights, EMA, optimiser moments, RNG states; JSON for the rest), so resuming
never unpickles anything.
"""

from __future__ import annotations

import copy
import csv
import datetime as _dt
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from .config import (
    BridgeConfig,
    ModelConfig,
    NetworksConfig,
    NormalizationConfig,
    PhysicsConfig,
    TrainingInfo,
)
from .datasets import PairPool, folder_pool, simulated_pool
from .device import resolve_device
from .errors import InputError
from .evaluate import CAREConfig, CARENet, care_metrics, save_care
from .model import MSCGM, load_model, save_model
from .networks import PatchDiscriminator
from .noise import NoiseKey
from .wavelets import haar_dwt2_level, haar_idwt2_level

__all__ = [
    "DataConfig",
    "StageConfig",
    "TrainConfig",
    "TrainResult",
    "checkpoint_path",
    "preset_train_config",
    "ssim_torch",
    "train",
]

CHECKPOINT_KEY = "mscgm_checkpoint"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where training pairs come from.

    ``source="simulated"`` simulates ``n`` pairs of ``shape``² target pixels once
    (seeded) with a simulator ``preset``; ``source="folder"`` reads ``path/low``
    and ``path/high``. The last ``validation`` pairs are held out.
    """

    source: Literal["simulated", "folder"] = "simulated"
    preset: str = "beads"
    n: int = Field(200, ge=2)
    shape: int = Field(256, ge=16)
    seed: int = Field(0, ge=0)
    path: str | None = None
    validation: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _folder_has_path(self) -> DataConfig:
        if self.source == "folder" and not self.path:
            raise ValueError("data.source 'folder' needs data.path")
        return self


class StageConfig(_Strict):
    """Iterations, batch size and learning rate of one training stage."""

    iterations: int = Field(2000, ge=0)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-4, gt=0)


class TrainConfig(_Strict):
    """A complete, validated training recipe (``napari-mscgm train --config FILE``)."""

    name: str = Field("mscgm", min_length=1, max_length=200)
    baseline: Literal["mscgm", "care"] = "mscgm"
    description: str = ""
    license: str = "BSD-3-Clause"
    scale: Literal[1, 2, 4] = 2
    levels: int = Field(2, ge=1, le=5)
    networks: NetworksConfig = NetworksConfig()
    bbdp: BridgeConfig = BridgeConfig()
    normalization: NormalizationConfig = NormalizationConfig()
    physics: PhysicsConfig | None = None  # None: the simulator preset's physics
    data: DataConfig = DataConfig()
    crop: int = Field(128, ge=8)
    bridge: StageConfig = StageConfig(iterations=2000, batch_size=16)
    generators: StageConfig = StageConfig(iterations=2000, batch_size=8)
    care: StageConfig = StageConfig(iterations=2000, batch_size=8, lr=4e-4)
    care_base_channels: int = Field(44, ge=4)
    lr_d: float = Field(1e-5, gt=0)
    d_every: int = Field(2, ge=1)
    d_base_channels: int = Field(16, ge=4)
    alpha: float = Field(0.1, ge=0)
    lam: float = Field(20.0, ge=0)
    nu: float = Field(0.5, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    lr_warmup: int = Field(100, ge=0)
    cosine_decay: bool = True
    val_every: int = Field(250, ge=1)
    val_steps: int | None = Field(None, ge=1)
    checkpoint_every: int = Field(500, ge=1)
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.crop % (self.scale * 2**self.levels * 4):
            raise ValueError(
                f"crop {self.crop} must be a multiple of scale × 2**levels × 4 "
                f"= {self.scale * 2**self.levels * 4}"
            )
        if len(self.networks.generators) != self.levels:
            raise ValueError(f"{self.levels} levels need {self.levels} generator configs")
        return self


def preset_train_config(preset: str, **overrides: object) -> TrainConfig:
    """The default recipe for a simulator preset (``beads``, ``cells`` …), with overrides."""
    base = {"name": f"{preset}-sr2x", "data": {"source": "simulated", "preset": preset}}
    data = overrides.pop("data", None)
    if isinstance(data, dict):
        base["data"] = {**base["data"], **data}
    return TrainConfig.model_validate({**base, **overrides})


def checkpoint_path(output: str | os.PathLike) -> Path:
    """Where training of ``output`` keeps its resumable checkpoint."""
    output = Path(output)
    name = output.name.removesuffix(".safetensors")
    return output.with_name(f"{name}.checkpoint.safetensors")


@dataclass
class TrainResult:
    """What a training run produced."""

    path: Path
    iterations: dict[str, int]
    wall_time_s: float
    history: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------- losses
def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_torch(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of ``(N, 1, H, W)`` batches (Gaussian window 11 / σ 1.5, differentiable)."""
    size = 11 if min(a.shape[-2:]) >= 11 else (min(a.shape[-2:]) // 2) * 2 - 1
    window = _gaussian_window(size).to(a)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = F.conv2d(a, window), F.conv2d(b, window)
    var_a = F.conv2d(a * a, window) - mu_a**2
    var_b = F.conv2d(b * b, window) - mu_b**2
    cov = F.conv2d(a * b, window) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return ssim.mean()


def _pyramid(image: torch.Tensor, levels: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``([LL_0 = image, LL_1, …, LL_S], [details_1, …, details_S])``."""
    lls, details = [image], []
    for _ in range(levels):
        ll, d = haar_dwt2_level(lls[-1])
        lls.append(ll)
        details.append(d)
    return lls, details


# ---------------------------------------------------------------- helpers
class _EMA:
    """Exponential moving average of a module's parameters (with a short warm-up)."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(module).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        # The warm-up restarts with each stage: the networks a stage trains start from their
        # initial weights, which the average must forget quickly.
        self.updates += 1
        decay = min(self.decay, (1 + step) / (10 + step))
        for ema, p in zip(self.module.parameters(), module.parameters(), strict=True):
            ema.lerp_(p, 1.0 - decay)
        for ema, b in zip(self.module.buffers(), module.buffers(), strict=True):
            ema.copy_(b)


def _lr_factor(step: int, total: int, warmup: int, cosine: bool) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    if not cosine or total <= warmup:
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _optimizer_tensors(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict, list]:
    state = optimizer.state_dict()
    tensors = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"opt.{name}.{idx}.{key}"] = tensor.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def _load_optimizer(
    name: str, optimizer: torch.optim.Optimizer, tensors: dict, groups: list
) -> None:
    state: dict[int, dict] = {}
    prefix = f"opt.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, sub = key[len(prefix) :].split(".", 1)
            state.setdefault(int(idx), {})[sub] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _load_pool(config: TrainConfig, normalization: NormalizationConfig) -> PairPool:
    data = config.data
    if data.source == "simulated":
        return simulated_pool(
            data.preset,
            n=data.n,
            shape=data.shape,
            seed=data.seed,
            pmin=normalization.pmin,
            pmax=normalization.pmax,
        )
    return folder_pool(
        data.path, scale=config.scale, pmin=normalization.pmin, pmax=normalization.pmax
    )


def _preset_physics(preset: str) -> PhysicsConfig:
    from .simulate import preset_config

    return preset_config(preset.split("+")[0]).physics()


def _data_description(data: DataConfig) -> str:
    if data.source == "simulated":
        return (
            f"simulated: preset '{data.preset}', {data.n} pairs of {data.shape}x{data.shape} "
            f"target pixels, seed {data.seed} ({data.validation} held out for validation)"
        )
    return f"folder: {data.path} ({data.validation} pairs held out for validation)"


def _resumable(recipe: dict) -> dict:
    """The parts of a recipe a resumed run must share (iteration counts may change)."""
    recipe = copy.deepcopy(recipe)
    for stage in ("bridge", "generators", "care"):
        recipe[stage].pop("iterations", None)
    return recipe


# ---------------------------------------------------------------- the trainer
class _Trainer:
    def __init__(
        self,
        config: TrainConfig,
        output: Path,
        *,
        device: torch.device,
        init: str | None,
        pool: PairPool | None,
        log: Path | None,
        progress: bool,
        command: str,
    ) -> None:
        self.config = config
        self.output = output
        self.device = device
        self.command = command
        self.progress = progress
        self.log = log
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)

        init_model = load_model(init, device="cpu") if init and config.baseline == "mscgm" else None
        normalization = init_model.config.normalization if init_model else config.normalization
        self.pool = pool if pool is not None else _load_pool(config, normalization)
        if self.pool.scale != config.scale:
            raise InputError(
                f"the data have scale {self.pool.scale}, the recipe asks for {config.scale}"
            )
        self.train_pool, self.val_pool = self.pool.split(
            min(config.data.validation, len(self.pool) - 1)
        )
        self.val_crop = min(config.crop, self.val_pool.min_target_size)
        self.val_crop -= self.val_crop % (config.scale * 2**config.levels * 4)
        if config.physics is not None:
            physics = config.physics
        elif init_model is not None:
            physics = init_model.config.physics
        elif config.data.source == "simulated":
            physics = _preset_physics(config.data.preset)
        else:
            physics = PhysicsConfig()
        self.physics = physics

        if config.baseline == "care":
            self.net: nn.Module = CARENet(
                CAREConfig(
                    name=config.name,
                    scale=config.scale,
                    base_channels=config.care_base_channels,
                    normalization=normalization,
                    physics=physics,
                )
            )
            self.stages = {"care": config.care}
        else:
            if init_model is not None:
                model_config = init_model.config.model_copy(
                    update={
                        "name": config.name,
                        "description": config.description or init_model.config.description,
                    }
                )
                self.net = init_model
            else:
                model_config = ModelConfig(
                    name=config.name,
                    task="super-resolution" if config.scale > 1 else "denoising",
                    scale=config.scale,
                    levels=config.levels,
                    bbdp=config.bbdp,
                    networks=config.networks,
                    normalization=normalization,
                    physics=physics,
                    license=config.license,
                    description=config.description,
                )
                self.net = MSCGM(model_config)
            self.net.config = model_config
            self.discriminators = nn.ModuleList(
                PatchDiscriminator(
                    channels=model_config.networks.unet.channels,
                    base_channels=config.d_base_channels,
                    num_layers=2,
                )
                for _ in range(model_config.levels)
            ).to(device)
            self.stages = {"bridge": config.bridge, "generators": config.generators}
        self.net.to(device).train()
        self.ema = _EMA(self.net, config.ema_decay)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        if config.baseline == "care":
            self.optimizers["care"] = torch.optim.AdamW(
                self.net.parameters(), lr=config.care.lr, weight_decay=config.weight_decay
            )
        else:
            self.optimizers["bridge"] = torch.optim.AdamW(
                self.net.unet.parameters(), lr=config.bridge.lr, weight_decay=config.weight_decay
            )
            self.optimizers["generators"] = torch.optim.AdamW(
                self.net.generators.parameters(),
                lr=config.generators.lr,
                weight_decay=config.weight_decay,
            )
            self.optimizers["disc"] = torch.optim.AdamW(
                self.discriminators.parameters(), lr=config.lr_d, weight_decay=config.weight_decay
            )
        self.stage_index = 0
        self.iteration = 0
        self.elapsed = 0.0
        self.history: list[dict] = []
        self.init = init

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        from safetensors.torch import save_file

        tensors = {
            f"model.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()
        }
        tensors.update(
            {
                f"ema.{k}": v.detach().cpu().contiguous()
                for k, v in self.ema.module.state_dict().items()
            }
        )
        if hasattr(self, "discriminators"):
            tensors.update(
                {
                    f"disc.{k}": v.detach().cpu().contiguous()
                    for k, v in self.discriminators.state_dict().items()
                }
            )
        groups = {}
        for name, opt in self.optimizers.items():
            opt_tensors, groups[name] = _optimizer_tensors(name, opt)
            tensors.update(opt_tensors)
        tensors["rng.torch"] = torch.get_rng_state()
        meta = {
            "train_config": self.config.model_dump(mode="json"),
            "model_config": json.loads(self.net.config.model_dump_json()),
            "stage_index": self.stage_index,
            "iteration": self.iteration,
            "elapsed_s": self.elapsed,
            "ema_updates": self.ema.updates,
            "param_groups": groups,
            "numpy_rng": self.rng.bit_generator.state,
            "init": self.init,
        }
        path = checkpoint_path(self.output)
        tmp = path.with_name(path.name + ".part")
        save_file(tensors, str(tmp), metadata={CHECKPOINT_KEY: json.dumps(meta, default=str)})
        tmp.replace(path)
        return path

    def load_checkpoint(self, path: Path) -> None:
        from safetensors import safe_open
        from safetensors.torch import load_file

        if not path.is_file():
            raise InputError(f"{path}: no checkpoint to resume from")
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
        if CHECKPOINT_KEY not in header:
            raise InputError(f"{path}: not an napari-mscgm training checkpoint")
        meta = json.loads(header[CHECKPOINT_KEY])
        if _resumable(meta["train_config"]) != _resumable(self.config.model_dump(mode="json")):
            raise InputError(f"{path}: was written by a different training recipe; cannot resume")
        tensors = load_file(str(path))

        def part(prefix: str) -> dict:
            return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

        self.net.load_state_dict(part("model."))
        self.ema.module.load_state_dict(part("ema."))
        if hasattr(self, "discriminators"):
            self.discriminators.load_state_dict(part("disc."))
        for name, opt in self.optimizers.items():
            _load_optimizer(name, opt, tensors, meta["param_groups"][name])
        torch.set_rng_state(tensors["rng.torch"])
        self.rng.bit_generator.state = meta["numpy_rng"]
        self.stage_index = meta["stage_index"]
        self.iteration = meta["iteration"]
        self.elapsed = meta["elapsed_s"]
        self.ema.updates = meta["ema_updates"]
        if self.log is not None and self.log.is_file():
            with open(self.log, newline="") as fh:
                self.history = [dict(r) for r in csv.DictReader(fh)]

    # ------------------------------------------------------------ steps
    def _batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.train_pool.sample(batch_size, crop=self.config.crop, rng=self.rng)
        return low.to(self.device), high.to(self.device)

    def step_bridge(self, batch_size: int) -> float:
        model: MSCGM = self.net  # type: ignore[assignment]
        low, high = self._batch(batch_size)
        with torch.no_grad():
            x0 = model.to_bridge(_pyramid(high, model.levels)[0][-1])
            y = model.to_bridge(_pyramid(model.upsample(low), model.levels)[0][-1])
            t = torch.randint(0, model.bridge.num_timesteps, (batch_size,), device=self.device)
            x_t = model.bridge.q_sample(x0, y, t, torch.randn_like(x0))
            target = model.bridge.training_target(x0, x_t)
        loss = model.bridge.loss(model.unet(x_t, t, y), target)
        opt = self.optimizers["bridge"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def step_generators(self, batch_size: int) -> float:
        model: MSCGM = self.net  # type: ignore[assignment]
        cfg = self.config
        low, high = self._batch(batch_size)
        with torch.no_grad():
            gt_lls, _ = _pyramid(high, model.levels)
            deg_lls, deg_details = _pyramid(model.upsample(low), model.levels)
        ll = gt_lls[-1]
        loss = torch.zeros((), device=self.device)
        fakes, reals = [], []
        for k in range(model.levels, 0, -1):
            gen = model.generators[k - 1]
            band = 2.0**k
            noise = torch.randn(
                (batch_size, gen.noise_channels, *ll.shape[-2:]), device=self.device
            )
            details = gen(ll / band, deg_lls[k] / band, deg_details[k - 1] / band, noise) * band
            recon = haar_idwt2_level(ll, details)
            fake = recon / 2.0 ** (k - 1)
            real = gt_lls[k - 1] / 2.0 ** (k - 1)
            mse = F.mse_loss(fake, real)
            ssim = ssim_torch(fake, real)
            adv = -torch.sigmoid(self.discriminators[k - 1](fake)).mean()
            loss = loss + cfg.lam * mse + cfg.nu * (1 - ssim) + cfg.alpha * adv
            fakes.append(fake.detach())
            reals.append(real)
            ll = recon.detach()  # the next scale sees this scale's output, as at inference
        opt = self.optimizers["generators"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if self.iteration % cfg.d_every == 0:
            d_loss = torch.zeros((), device=self.device)
            for i, k in enumerate(range(model.levels, 0, -1)):
                disc = self.discriminators[k - 1]
                d_loss = d_loss + (
                    torch.sigmoid(disc(fakes[i])).mean() - torch.sigmoid(disc(reals[i])).mean()
                )
            d_opt = self.optimizers["disc"]
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
        return float(loss.detach())

    def step_care(self, batch_size: int) -> float:
        net: CARENet = self.net  # type: ignore[assignment]
        low, high = self._batch(batch_size)
        loss = F.l1_loss(net(net.upsample(low)), high)
        opt = self.optimizers["care"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    # ------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        low, high = self.val_pool.center_crops(self.val_crop)
        net = self.ema.module
        if self.config.baseline == "care":
            preds = net(net.upsample(low.to(self.device)))
        else:
            keys = [NoiseKey(seed=0, sample=i) for i in range(low.shape[0])]
            preds = net.sample(
                net.upsample(low.to(self.device)), keys=keys, steps=self.config.val_steps
            )
        scores = [
            care_metrics(p[0].cpu().numpy(), h[0].numpy()) for p, h in zip(preds, high, strict=True)
        ]
        return float(np.mean([s[0] for s in scores])), float(np.mean([s[1] for s in scores]))

    def _log_row(self, row: dict) -> None:
        self.history.append(row)
        if self.log is None:
            return
        new = not self.log.exists() or self.log.stat().st_size == 0
        with open(self.log, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    # ------------------------------------------------------------ the loop
    def run(self, callback: Callable[[str, int, int, float], None] | None = None) -> TrainResult:
        from tqdm import tqdm

        steps = {
            "bridge": self.step_bridge,
            "generators": self.step_generators,
            "care": self.step_care,
        }
        names = list(self.stages)
        total = sum(s.iterations for s in self.stages.values())
        done_before = (
            sum(self.stages[n].iterations for n in names[: self.stage_index]) + self.iteration
        )
        bar = tqdm(
            total=total, initial=done_before, disable=None if self.progress else True, unit="it"
        )
        start = time.perf_counter() - self.elapsed
        try:
            while self.stage_index < len(names):
                name = names[self.stage_index]
                stage = self.stages[name]
                opt = self.optimizers[name]
                running: list[float] = []
                while self.iteration < stage.iterations:
                    factor = _lr_factor(
                        self.iteration,
                        stage.iterations,
                        self.config.lr_warmup,
                        self.config.cosine_decay,
                    )
                    _set_lr(opt, stage.lr * factor)
                    if name == "generators":
                        _set_lr(self.optimizers["disc"], self.config.lr_d * factor)
                    loss = steps[name](stage.batch_size)
                    if not math.isfinite(loss):
                        raise RuntimeError(
                            f"the {name} loss became {loss} at iteration {self.iteration}"
                        )
                    self.ema.update(self.net, self.iteration)
                    self.iteration += 1
                    running.append(loss)
                    bar.update(1)
                    bar.set_postfix(stage=name, loss=f"{loss:.4f}")
                    last = self.iteration == stage.iterations
                    if self.iteration % self.config.val_every == 0 or last:
                        psnr, ssim = self.validate()
                        self.elapsed = time.perf_counter() - start
                        self._log_row(
                            {
                                "stage": name,
                                "iteration": self.iteration,
                                "loss": float(np.mean(running)),
                                "val_psnr": psnr,
                                "val_ssim": ssim,
                                "elapsed_s": round(self.elapsed, 2),
                            }
                        )
                        if callback is not None:
                            callback(
                                name, self.iteration, stage.iterations, float(np.mean(running))
                            )
                        running = []
                    if self.iteration % self.config.checkpoint_every == 0 and not last:
                        self.elapsed = time.perf_counter() - start
                        self.save_checkpoint()
                # The stage is complete: the checkpoint records the start of the next one.
                self.stage_index += 1
                self.iteration = 0
                self.elapsed = time.perf_counter() - start
                self.save_checkpoint()
        finally:
            bar.close()
        self.elapsed = time.perf_counter() - start
        return self._finish()

    def _finish(self) -> TrainResult:
        iterations = {name: s.iterations for name, s in self.stages.items()}
        info = TrainingInfo(
            data=_data_description(self.config.data)
            + (f"; fine-tuned from '{self.init}'" if self.init else ""),
            iterations=iterations,
            command=self.command,
            date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
            wall_time_s=round(self.elapsed, 1),
        )
        final = self.ema.module.cpu()
        final.config = final.config.model_copy(update={"training": info})
        if self.config.baseline == "care":
            save_care(final, self.output)
        else:
            save_model(final, self.output)
        return TrainResult(self.output, iterations, self.elapsed, self.history)


def train(
    config: TrainConfig,
    output: str | os.PathLike,
    *,
    device: str | torch.device | None = "auto",
    resume: bool | str | os.PathLike = False,
    init: str | None = None,
    pool: PairPool | None = None,
    log: str | os.PathLike | None = None,
    progress: bool = True,
    command: str = "",
    callback: Callable[[str, int, int, float], None] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train an MSCGM model (or the CARE-like baseline) and write its weights.

    Parameters
    ----------
    config : TrainConfig
        The recipe.
    output : path
        The ``.safetensors`` file to write; :func:`napari_mscgm.load_model` opens it
        (:func:`napari_mscgm.evaluate.load_care` for ``baseline="care"``).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda[:i]"`` or ``"mps"``.
    resume : bool or path
        Continue from the checkpoint of ``output`` (``True``) or from this checkpoint file.
        The recipe may differ from the checkpoint's only in the iteration counts, so a
        run can be extended (or cut short) on resume.
    init : str, optional
        Fine-tune: start from this model (bundled name or path); its architecture,
        normalisation and physics are kept.
    pool : PairPool, optional
        Use these pairs instead of loading ``config.data``.
    log : path, optional
        CSV of the per-interval loss and validation PSNR / SSIM.
    progress : bool
        Show a progress bar (on a terminal).
    command : str
        The command line, recorded in the weights' provenance.
    callback : callable, optional
        ``callback(stage, iteration, stage_iterations, mean_loss)`` at every validation.
    threads : int, optional
        CPU threads for torch (default: all cores this process may use).
    """
    output = Path(output)
    if output.suffix != ".safetensors":
        raise InputError(f"{output}: the output must be a .safetensors file")
    if not output.parent.is_dir():
        raise InputError(f"{output.parent}: output directory does not exist")
    resolved = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    trainer = _Trainer(
        config,
        output,
        device=resolved,
        init=init,
        pool=pool,
        log=None if log is None else Path(log),
        progress=progress,
        command=command,
    )
    if resume:
        trainer.load_checkpoint(checkpoint_path(output) if resume is True else Path(resume))
    elif log is not None and Path(log).exists():
        Path(log).unlink()
    return trainer.run(callback)
