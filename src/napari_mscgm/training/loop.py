"""The training loop every algorithm shares, and :func:`train`.

Stages run one after another (MSCGM: the bridge, then the generators; CARE: one).
Each step's learning rate follows a linear warm-up and a cosine decay to a tenth;
an exponential moving average (EMA) of the weights is kept and is what is saved.
Every ``val_every`` iterations the EMA weights are scored on the held-out pairs and
a row is logged; every ``checkpoint_every`` a resumable checkpoint is written, so a
run can be stopped and resumed (on another day, or with more iterations).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import datetime as _dt
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import (
    CARETrainConfig,
    MSCGMTrainConfig,
    NormalizationConfig,
    PhysicsConfig,
    TrainingInfo,
)
from ..device import resolve_device, set_threads
from ..errors import InputError
from ..model_io.weights import save_model
from .checkpoint import (
    checkpoint_path,
    load_checkpoint,
    load_optimizer,
    optimizer_tensors,
    save_checkpoint,
)
from .datasets import PairPool, folder_pool
from .simulated import simulated_pool

__all__ = ["EMA", "StopTraining", "TrainResult", "Trainer", "lr_factor", "mean_scores", "train"]


class StopTraining(Exception):
    """Raised by a ``step_callback`` to end a run early.

    The loop then writes a checkpoint (the run can be resumed) and the model as trained
    so far, with the iterations it really had in its provenance.
    """


@dataclass
class TrainResult:
    """What a training run produced."""

    path: Path
    iterations: dict[str, int]
    wall_time_s: float
    history: list[dict] = field(default_factory=list)
    #: Ended early by :class:`StopTraining`; ``iterations`` are those done.
    stopped: bool = False


class EMA:
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


def lr_factor(step: int, total: int, warmup: int, cosine: bool) -> float:
    """Linear warm-up over ``warmup`` steps, then a cosine decay to 0.1 at ``total``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if not cosine or total <= warmup:
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def mean_scores(predictions: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """Mean CARE-style ``(PSNR, SSIM)`` of ``(N, 1, H, W)`` predictions against targets."""
    from ..evaluation.metrics import care_metrics

    scores = [
        care_metrics(p[0].cpu().numpy(), h[0].cpu().numpy())
        for p, h in zip(predictions, targets, strict=True)
    ]
    return float(np.mean([s[0] for s in scores])), float(np.mean([s[1] for s in scores]))


def load_pool(config: Any, normalization: NormalizationConfig) -> PairPool:
    """The pairs a recipe's ``data`` names, normalised like the model's inputs."""
    data = config.data
    if data.source == "simulated":
        cache = None
        if data.cache:
            import platformdirs

            cache = Path(platformdirs.user_cache_dir("napari-mscgm")) / "pairs"
        return simulated_pool(
            data.simulation or data.preset, n=data.n, shape=data.shape, seed=data.seed,
            pmin=normalization.pmin, pmax=normalization.pmax, workers=data.workers,
            cache_dir=cache,
        )  # fmt: skip
    return folder_pool(
        data.path, scale=config.scale, pmin=normalization.pmin, pmax=normalization.pmax
    )


def data_description(config: Any, init: str | None) -> str:
    data = config.data
    if data.source == "simulated":
        what = f"preset '{data.preset}'" if data.simulation is None else _simulation_text(data)
        text = (
            f"simulated: {what}, {data.n} pairs of {data.shape}x{data.shape} "
            f"target pixels, seed {data.seed} ({data.validation} held out for validation)"
        )
    else:
        text = f"folder: {data.path} ({data.validation} pairs held out for validation)"
    return text + (f"; fine-tuned from '{init}'" if init else "")


def _simulation_text(data: Any) -> str:
    sim = data.simulation
    classes = ", ".join(sim.classes) if sim.classes else "every structure class"
    varied = "; acquisition randomised around it" if sim.acquisition is not None else ""
    return (
        f"scene '{sim.scene}' from {classes}, {sim.input.na:g} NA in -> {sim.target.na:g} NA "
        f"out, {sim.input_peak_photons[0]:g}-{sim.input_peak_photons[1]:g} peak photons{varied}"
    )


def _resumable(recipe: dict) -> dict:
    """The parts of a recipe a resumed run must share (iteration counts may change)."""
    recipe = copy.deepcopy(recipe)
    for stage in ("bridge", "generators", "care"):
        if stage in recipe:
            recipe[stage].pop("iterations", None)
    return recipe


class Trainer:
    """The loop; a subclass per algorithm builds the networks and takes the steps.

    Subclasses set ``net`` (the module whose EMA is saved), ``optimizers`` (one per
    stage, plus any others) and ``extra_modules`` (saved in checkpoints, e.g. the
    discriminators), and implement :meth:`step` and :meth:`validate`.
    """

    def __init__(
        self,
        config: Any,
        output: Path,
        *,
        device: torch.device,
        init: str | None,
        pool: PairPool | None,
        log: Path | None,
        progress: bool,
        command: str,
    ) -> None:
        self.config, self.output, self.device = config, output, device
        self.command, self.progress, self.log, self.init = command, progress, log, init
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        init_model = self.load_init(init)
        normalization = init_model.config.normalization if init_model else config.normalization
        self.pool = pool if pool is not None else load_pool(config, normalization)
        if self.pool.scale != config.scale:
            raise InputError(
                f"the data have scale {self.pool.scale}, the recipe asks for {config.scale}"
            )
        self.train_pool, self.val_pool = self.pool.split(
            min(config.data.validation, len(self.pool) - 1)
        )
        self.val_crop = min(config.crop, self.val_pool.min_target_size)
        self.val_crop -= self.val_crop % config.crop_multiple
        self.physics = self._physics(init_model)
        self.extra_modules: dict[str, nn.Module] = {}
        self.net = self.build(init_model, normalization)
        self.net.to(device).train()
        self.ema = EMA(self.net, config.ema_decay)
        self.optimizers: dict[str, torch.optim.Optimizer] = self.build_optimizers()
        self.stages = config.stages()
        self.stage_index, self.iteration, self.elapsed = 0, 0, 0.0
        self.history: list[dict] = []

    # ------------------------------------------------------------ algorithm hooks
    def load_init(self, init: str | None) -> Any:
        """The model to fine-tune from (None: train from scratch)."""
        return None

    def build(self, init_model: Any, normalization: NormalizationConfig) -> nn.Module:
        raise NotImplementedError

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def step(self, stage: str, batch_size: int) -> float:
        """One optimisation step of ``stage``; returns its loss."""
        raise NotImplementedError

    def validate(self) -> tuple[float, float]:
        """``(PSNR, SSIM)`` of the EMA weights on the held-out centre crops."""
        raise NotImplementedError

    def set_learning_rates(self, stage: str, factor: float) -> None:
        set_lr(self.optimizers[stage], self.stages[stage].lr * factor)

    # ------------------------------------------------------------ shared helpers
    def autocast(self) -> Any:
        """bfloat16 autocast for the steps when the recipe asks for it (weights stay float32)."""
        if self.config.precision != "bfloat16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def adamw(self, parameters: Any, lr: float) -> torch.optim.Optimizer:
        """AdamW with the recipe's weight decay; the fused kernel where torch has one."""
        try:
            return torch.optim.AdamW(
                parameters, lr=lr, weight_decay=self.config.weight_decay, fused=True
            )
        except (RuntimeError, TypeError):  # no fused kernel for this device or dtype
            return torch.optim.AdamW(parameters, lr=lr, weight_decay=self.config.weight_decay)

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.train_pool.sample(batch_size, crop=self.config.crop, rng=self.rng)
        return low.to(self.device), high.to(self.device)

    def _physics(self, init_model: Any) -> PhysicsConfig:
        config = self.config
        if config.physics is not None:
            return config.physics
        if init_model is not None:
            return init_model.config.physics
        if config.data.source == "simulated":
            from ..simulate import preset_config

            simulation = config.data.simulation
            if simulation is None:
                simulation = preset_config(config.data.preset.split("+")[0])
            return simulation.physics()
        return PhysicsConfig()

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        modules = {"model": self.net, "ema": self.ema.module, **self.extra_modules}
        tensors = {
            f"{prefix}.{k}": v.detach().cpu().contiguous()
            for prefix, module in modules.items()
            for k, v in module.state_dict().items()
        }
        groups = {}
        for name, opt in self.optimizers.items():
            opt_tensors, groups[name] = optimizer_tensors(name, opt)
            tensors.update(opt_tensors)
        tensors["rng.torch"] = torch.get_rng_state()
        meta = {
            "train_config": self.config.model_dump(mode="json"),
            "model_config": self.net.config.model_dump(mode="json"),
            "stage_index": self.stage_index,
            "iteration": self.iteration,
            "elapsed_s": self.elapsed,
            "ema_updates": self.ema.updates,
            "param_groups": groups,
            "numpy_rng": self.rng.bit_generator.state,
            "init": self.init,
        }
        return save_checkpoint(checkpoint_path(self.output), tensors, meta)

    def load_checkpoint(self, path: Path) -> None:
        tensors, meta = load_checkpoint(path)
        if _resumable(meta["train_config"]) != _resumable(self.config.model_dump(mode="json")):
            raise InputError(f"{path}: was written by a different training recipe; cannot resume")

        def part(prefix: str) -> dict:
            return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

        modules = {"model": self.net, "ema": self.ema.module, **self.extra_modules}
        for prefix, module in modules.items():
            module.load_state_dict(part(prefix + "."))
        for name, opt in self.optimizers.items():
            load_optimizer(name, opt, tensors, meta["param_groups"][name])
        torch.set_rng_state(tensors["rng.torch"])
        self.rng.bit_generator.state = meta["numpy_rng"]
        self.stage_index, self.iteration = meta["stage_index"], meta["iteration"]
        self.elapsed, self.ema.updates = meta["elapsed_s"], meta["ema_updates"]
        if self.log is not None and self.log.is_file():
            with open(self.log, newline="") as fh:
                self.history = [dict(r) for r in csv.DictReader(fh)]

    # ------------------------------------------------------------ the loop
    def _log_row(self, row: dict) -> None:
        self.history.append(row)
        if self.log is None:
            return
        new = not self.log.exists() or self.log.stat().st_size == 0
        with open(self.log, "a", newline="") as fh:  # appended row by row: a log, not a result
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _validate_and_log(self, name: str, running: list[float], start: float) -> None:
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

    def _run_stage(
        self,
        name: str,
        start: float,
        bar: Any,
        callback: Callable | None,
        step_callback: Callable | None,
    ) -> None:
        stage, cfg = self.stages[name], self.config
        running: list[float] = []
        while self.iteration < stage.iterations:
            if step_callback is not None:
                step_callback(name, self.iteration, stage.iterations)
            factor = lr_factor(self.iteration, stage.iterations, cfg.lr_warmup, cfg.cosine_decay)
            self.set_learning_rates(name, factor)
            with self.autocast():
                loss = self.step(name, stage.batch_size)
            if not math.isfinite(loss):
                raise RuntimeError(f"the {name} loss became {loss} at iteration {self.iteration}")
            self.ema.update(self.net, self.iteration)
            self.iteration += 1
            running.append(loss)
            bar.update(1)
            bar.set_postfix(stage=name, loss=f"{loss:.4f}")
            last = self.iteration == stage.iterations
            if self.iteration % cfg.val_every == 0 or last:
                self._validate_and_log(name, running, start)
                if callback is not None:
                    callback(name, self.iteration, stage.iterations, float(np.mean(running)))
                running = []
            if self.iteration % cfg.checkpoint_every == 0 and not last:
                self.elapsed = time.perf_counter() - start
                self.save_checkpoint()

    def run(
        self,
        callback: Callable[[str, int, int, float], None] | None = None,
        step_callback: Callable[[str, int, int], None] | None = None,
    ) -> TrainResult:
        from tqdm import tqdm

        names = list(self.stages)
        total = sum(s.iterations for s in self.stages.values())
        done = sum(self.stages[n].iterations for n in names[: self.stage_index]) + self.iteration
        bar = tqdm(total=total, initial=done, disable=None if self.progress else True, unit="it")
        start = time.perf_counter() - self.elapsed
        stopped = False
        try:
            while self.stage_index < len(names):
                self._run_stage(names[self.stage_index], start, bar, callback, step_callback)
                # The stage is complete: the checkpoint records the start of the next one.
                self.stage_index += 1
                self.iteration = 0
                self.elapsed = time.perf_counter() - start
                self.save_checkpoint()
        except StopTraining:
            stopped = True
            self.elapsed = time.perf_counter() - start
            self.save_checkpoint()
        finally:
            bar.close()
        self.elapsed = time.perf_counter() - start
        return self._finish(stopped)

    def _finish(self, stopped: bool = False) -> TrainResult:
        done = {
            name: s.iterations
            if i < self.stage_index
            else self.iteration
            if i == self.stage_index
            else 0
            for i, (name, s) in enumerate(self.stages.items())
        }
        iterations = done if stopped else {name: s.iterations for name, s in self.stages.items()}
        info = TrainingInfo(
            data=data_description(self.config, self.init),
            iterations=iterations,
            command=self.command,
            date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
            wall_time_s=round(self.elapsed, 1),
        )
        final = self.ema.module.cpu()
        final.config = final.config.model_copy(update={"training": info})
        save_model(final, self.output)
        return TrainResult(self.output, iterations, self.elapsed, self.history, stopped)


def train(
    config: MSCGMTrainConfig | CARETrainConfig,
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
    step_callback: Callable[[str, int, int], None] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train an MSCGM model (or the CARE-like baseline) and write its weights.

    Parameters
    ----------
    config : MSCGMTrainConfig or CARETrainConfig
        The recipe (:func:`~napari_mscgm.config.parse_train_config` reads one).
    output : path
        The ``.safetensors`` file to write; :func:`napari_mscgm.load_model` opens it
        (:func:`napari_mscgm.model_io.weights.load_care` for the CARE baseline).
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
    step_callback : callable, optional
        ``step_callback(stage, iteration, stage_iterations)`` before every step; raising
        :class:`StopTraining` in it ends the run early, with a checkpoint and the model
        as trained so far (``TrainResult.stopped``).
    threads : int, optional
        CPU threads for torch; None leaves torch's setting alone.
    """
    from .trainers import trainer_class

    output = Path(output)
    if output.suffix != ".safetensors":
        raise InputError(f"{output}: the output must be a .safetensors file")
    if not output.parent.is_dir():
        raise InputError(f"{output.parent}: output directory does not exist")
    resolved = resolve_device(device)
    set_threads(threads)
    trainer = trainer_class(config)(
        config, output, device=resolved, init=init, pool=pool,
        log=None if log is None else Path(log), progress=progress, command=command,
    )  # fmt: skip
    if resume:
        trainer.load_checkpoint(checkpoint_path(output) if resume is True else Path(resume))
    elif log is not None and Path(log).exists():
        Path(log).unlink()
    return trainer.run(callback, step_callback)
