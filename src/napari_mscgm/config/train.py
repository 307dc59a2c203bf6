"""Training recipes: one validated class per algorithm, discriminated by ``algorithm``.

A recipe file (``napari-mscgm train --config FILE``) is one JSON object; its
``algorithm`` (``"mscgm"`` by default, or ``"care"`` for the CARE-like baseline)
chooses the class, and unknown keys are errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from ..errors import InputError
from ._base import Strict, first_error
from .model import BridgeConfig, NetworksConfig, NormalizationConfig, PhysicsConfig
from .simulation import SimulationConfig

__all__ = [
    "CARETrainConfig",
    "DataConfig",
    "MSCGMTrainConfig",
    "StageConfig",
    "TrainConfig",
    "parse_train_config",
    "with_batch_multiplier",
]


class DataConfig(Strict):
    """Where training pairs come from.

    ``source="simulated"`` simulates ``n`` pairs of ``shape``² target pixels once
    (seeded) with ``simulation`` (a full simulator config, for a self-contained recipe)
    or a simulator ``preset`` (several joined by ``+`` for an even mix), in ``workers``
    processes, kept in the user's cache folder with ``cache``; ``source="folder"`` reads
    ``path/low`` and ``path/high``. The last ``validation`` pairs are held out.
    """

    source: Literal["simulated", "folder"] = "simulated"
    preset: str = "beads"
    simulation: SimulationConfig | None = None
    n: int = Field(200, ge=2)
    shape: int = Field(256, ge=16)
    seed: int = Field(0, ge=0)
    path: str | None = None
    validation: int = Field(4, ge=1)
    workers: int = Field(1, ge=1, le=64)
    cache: bool = False

    @model_validator(mode="after")
    def _folder_has_path(self) -> DataConfig:
        if self.source == "folder" and not self.path:
            raise ValueError("data.source 'folder' needs data.path")
        return self


class StageConfig(Strict):
    """Iterations, batch size and learning rate of one training stage."""

    iterations: int = Field(2000, ge=0)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-4, gt=0)


class _TrainCommon(Strict):
    """What every algorithm's recipe has: data, crops, optimiser, schedule, cadence."""

    name: str = Field("mscgm", min_length=1, max_length=200)
    description: str = ""
    license: str = "BSD-3-Clause"
    scale: Literal[1, 2, 4] = 2
    normalization: NormalizationConfig = NormalizationConfig()
    physics: PhysicsConfig | None = None  # None: the simulator preset's physics
    data: DataConfig = DataConfig()
    crop: int = Field(128, ge=8)
    weight_decay: float = Field(0.0, ge=0)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    lr_warmup: int = Field(100, ge=0)
    cosine_decay: bool = True
    val_every: int = Field(250, ge=1)
    checkpoint_every: int = Field(500, ge=1)
    seed: int = Field(0, ge=0)
    precision: Literal["float32", "bfloat16"] = Field(
        "float32", description="bfloat16: the steps run under autocast (about 1.5x on CPUs)"
    )

    @property
    def crop_multiple(self) -> int:
        """Crop sizes (target pixels) must be multiples of this for the networks."""
        raise NotImplementedError

    def _check_crop(self) -> None:
        if self.crop % self.crop_multiple:
            raise ValueError(f"crop {self.crop} must be a multiple of {self.crop_multiple}")

    def stages(self) -> dict[str, StageConfig]:
        """The training stages in order, by name."""
        raise NotImplementedError


class MSCGMTrainConfig(_TrainCommon):
    """MSCGM in two stages: the Brownian bridge on ``LL_S``, then the detail generators."""

    algorithm: Literal["mscgm"] = "mscgm"
    levels: int = Field(2, ge=1, le=5)
    networks: NetworksConfig = NetworksConfig()
    bbdp: BridgeConfig = BridgeConfig()
    bridge: StageConfig = StageConfig(iterations=2000, batch_size=16)
    generators: StageConfig = StageConfig(iterations=2000, batch_size=8)
    lr_d: float = Field(1e-5, gt=0)
    d_every: int = Field(2, ge=1)
    d_base_channels: int = Field(16, ge=4)
    alpha: float = Field(0.1, ge=0)
    lam: float = Field(20.0, ge=0)
    nu: float = Field(0.5, ge=0)
    val_steps: int | None = Field(None, ge=1)

    @property
    def crop_multiple(self) -> int:
        return self.scale * 2**self.levels * 4

    @model_validator(mode="after")
    def _consistent(self) -> MSCGMTrainConfig:
        self._check_crop()
        if len(self.networks.generators) != self.levels:
            raise ValueError(f"{self.levels} levels need {self.levels} generator configs")
        return self

    def stages(self) -> dict[str, StageConfig]:
        return {"bridge": self.bridge, "generators": self.generators}


class CARETrainConfig(_TrainCommon):
    """The CARE-like baseline: one regression stage with an L1 loss."""

    algorithm: Literal["care"] = "care"
    care: StageConfig = StageConfig(iterations=2000, batch_size=8, lr=4e-4)
    base_channels: int = Field(44, ge=4, le=4096)
    channel_mults: tuple[Annotated[int, Field(ge=1, le=64)], ...] = Field((1, 2, 2), min_length=1)
    num_res_blocks: int = Field(1, ge=1, le=16)

    @property
    def crop_multiple(self) -> int:
        return self.scale * 2 ** (len(self.channel_mults) - 1)

    @model_validator(mode="after")
    def _consistent(self) -> CARETrainConfig:
        self._check_crop()
        return self

    def stages(self) -> dict[str, StageConfig]:
        return {"care": self.care}


TrainConfig = Annotated[MSCGMTrainConfig | CARETrainConfig, Field(discriminator="algorithm")]
_ADAPTER: TypeAdapter = TypeAdapter(TrainConfig)


def parse_train_config(document: dict[str, Any]) -> MSCGMTrainConfig | CARETrainConfig:
    """Validate a recipe document (``algorithm`` defaults to ``"mscgm"``).

    Raises
    ------
    InputError
        With the first problem on one line.
    """
    if not isinstance(document, dict):
        raise InputError("a training recipe must be a JSON object")
    try:
        return _ADAPTER.validate_python({"algorithm": "mscgm", **document})
    except ValidationError as exc:
        raise InputError(f"invalid training recipe: {first_error(exc, skip=1)}") from None


def with_batch_multiplier(
    config: MSCGMTrainConfig | CARETrainConfig, factor: int
) -> MSCGMTrainConfig | CARETrainConfig:
    """The same recipe with ``factor`` times larger batches, for a GPU.

    The budget (iterations × batch × crop²) stays the recipe's: iterations, warm-up and
    the validation and checkpoint cadence shrink by ``factor``, and the learning rates
    grow by √factor (the usual rule for Adam with larger batches).
    """
    if factor < 1:
        raise InputError(f"the batch multiplier must be at least 1, got {factor}")
    if factor == 1:
        return config

    def fewer(n: int) -> int:
        return max(1, -(-n // factor))

    root = factor**0.5
    update: dict[str, Any] = {
        name: StageConfig(iterations=-(-stage.iterations // factor),
                          batch_size=stage.batch_size * factor, lr=stage.lr * root)
        for name, stage in config.stages().items()
    }  # fmt: skip
    update.update(lr_warmup=config.lr_warmup // factor, val_every=fewer(config.val_every),
                  checkpoint_every=fewer(config.checkpoint_every))  # fmt: skip
    if isinstance(config, MSCGMTrainConfig):
        update["lr_d"] = config.lr_d * root
    return type(config).model_validate({**config.model_dump(), **update})
