"""Validated configuration of a model: the ``mscgm`` JSON document of a weights file.

One :class:`ModelConfig` fully describes a model: its task and scale, the
wavelet split, the bridge, every network's constructor arguments, the
normalisation, the physics it was trained for and how it was trained.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ._base import Strict

__all__ = [
    "FORMAT_VERSION",
    "BridgeConfig",
    "CAREConfig",
    "CalibrationConfig",
    "GeneratorConfig",
    "ModelConfig",
    "NetworksConfig",
    "NormalizationConfig",
    "ObservationBlend",
    "PhysicsConfig",
    "TrainingInfo",
    "UNetConfig",
]

#: Version of the weights-file metadata this package writes and the newest it reads
#: (2 added the optional ``calibration``).
FORMAT_VERSION = 2


#: Sanity bounds of the network sizes: far above any useful model, low enough that
#: metadata alone cannot describe a network too large to build.
_Mults = Annotated[
    tuple[Annotated[int, Field(ge=1, le=64)], ...], Field(min_length=1, max_length=8)
]
_Width = Annotated[int, Field(ge=4, le=4096)]
_Channels = Annotated[int, Field(ge=1, le=64)]
_Blocks = Annotated[int, Field(ge=1, le=16)]


class BridgeConfig(Strict):
    """Brownian bridge on ``LL_S`` (BBDM defaults)."""

    num_timesteps: int = Field(1000, ge=2, le=100_000)
    max_var: float = Field(1.0, gt=0)
    schedule: Literal["linear"] = "linear"
    objective: Literal["grad"] = "grad"
    default_steps: int = Field(20, ge=1, le=100_000)
    default_eta: float = Field(1.0, ge=0)


class UNetConfig(Strict):
    """Arguments of :class:`napari_mscgm.core.networks.TimeConditionedUNet`."""

    channels: _Channels = 1
    base_channels: _Width = 32
    channel_mults: _Mults = (1, 2, 2)
    num_res_blocks: _Blocks = 1
    attention: bool = False
    norm: Literal["group", "pixel"] = "pixel"


class GeneratorConfig(Strict):
    """Arguments of :class:`napari_mscgm.core.networks.HighFrequencyGenerator`."""

    channels: _Channels = 1
    noise_channels: _Channels = 1
    base_channels: _Width = 24
    channel_mults: _Mults = (1, 2)
    num_res_blocks: _Blocks = 1
    norm: Literal["group", "pixel"] = "pixel"


class NetworksConfig(Strict):
    """The U-Net for ``LL_S`` and one generator per scale (index 0 is scale 1, the finest)."""

    unet: UNetConfig = UNetConfig()
    generators: tuple[GeneratorConfig, ...] = (GeneratorConfig(), GeneratorConfig())


class NormalizationConfig(Strict):
    """Percentiles that map each channel of the input to roughly [0, 1]."""

    pmin: float = Field(1.0, ge=0, lt=100)
    pmax: float = Field(99.8, gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> NormalizationConfig:
        if self.pmin >= self.pmax:
            raise ValueError(f"pmin ({self.pmin}) must be below pmax ({self.pmax})")
        return self


class PhysicsConfig(Strict):
    """The imaging the model was trained for (None where unknown)."""

    input_pixel_size_um: float | None = Field(None, gt=0)
    target_pixel_size_um: float | None = Field(None, gt=0)
    input_na: float | None = Field(None, gt=0)
    target_na: float | None = Field(None, gt=0)
    emission_wavelength_um: float | None = Field(None, gt=0)
    modality: str = "widefield fluorescence"


class TrainingInfo(Strict):
    """Provenance of the weights."""

    data: str = ""
    iterations: dict[str, int] = Field(default_factory=dict)
    command: str = ""
    date: str = ""
    wall_time_s: float | None = None


class CalibrationConfig(Strict):
    """How the std of samples becomes a calibrated std (:mod:`napari_mscgm.core.calibration`)."""

    coefficients: tuple[
        Annotated[float, Field(ge=0)],
        Annotated[float, Field(ge=0)],
        Annotated[float, Field(ge=0)],
        Annotated[float, Field(ge=0)],
        Annotated[float, Field(ge=0)],
    ] = Field(
        description="c_spread, c_gradient, c_intensity, c_innovation, c_floor of the variance"
    )
    gradient_sigma: float = Field(1.0, gt=0, le=20, description="target pixels")
    samples: int = Field(8, ge=2, description="samples per restoration when it was fitted")
    fitted_on: str = Field("", description="the held-out data it was fitted on")
    coverage: float | None = Field(None, ge=0, le=1, description="of ±1.645 σ on that data")


class ObservationBlend(Strict):
    """How much of the input's own coarsest band to keep where it is reliable.

    The bridge's ``LL_S`` has an error floor: where the input is bright and clean its own
    ``LL_S`` is closer to the truth. Per ``LL_S`` pixel, with ``e`` the mean square of the
    input's detail coefficients at the level that holds its noise (a local noise
    estimate), the restored band becomes ``LL_b + w · (LL_y − LL_b)`` with
    ``w = max_weight · floor / (floor + e)``: a Wiener-like fusion of two estimates whose
    errors are ``floor`` (the bridge's) and ``e`` (the input's). Fitted on held-out
    simulated pairs (:func:`napari_mscgm.evaluation.blend.fit_observation_blend`).
    """

    floor: float = Field(gt=0, le=1.0, description="bridge error variance, normalised units")
    max_weight: float = Field(gt=0, le=1.0)
    fitted_on: str = ""


class ModelConfig(Strict):
    """Everything needed to rebuild a model; stored as JSON under the key ``mscgm``."""

    format_version: int = Field(FORMAT_VERSION, ge=1)
    name: str = Field("untitled", min_length=1, max_length=200)
    task: Literal["super-resolution", "denoising"] = "super-resolution"
    scale: Literal[1, 2, 4] = 2
    wavelet: Literal["haar"] = "haar"
    levels: int = Field(2, ge=1, le=5)
    bbdp: BridgeConfig = BridgeConfig()
    networks: NetworksConfig = NetworksConfig()
    normalization: NormalizationConfig = NormalizationConfig()
    physics: PhysicsConfig = PhysicsConfig()
    training: TrainingInfo = TrainingInfo()
    license: str = "BSD-3-Clause"
    description: str = ""
    calibration: CalibrationConfig | None = None
    observation_blend: ObservationBlend | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if len(self.networks.generators) != self.levels:
            raise ValueError(
                f"{self.levels} wavelet levels need {self.levels} generators, "
                f"got {len(self.networks.generators)}"
            )
        if self.task == "denoising" and self.scale != 1:
            raise ValueError("a denoising model has scale 1")
        channels = {self.networks.unet.channels, *(g.channels for g in self.networks.generators)}
        if len(channels) != 1:
            raise ValueError("the U-Net and all generators must have the same number of channels")
        if self.observation_blend is not None and self.scale.bit_length() - 1 >= self.levels:
            raise ValueError("an observation blend needs more wavelet levels than log2(scale)")
        return self


class CAREConfig(Strict):
    """A CARE-like baseline: a regression U-Net on the bicubic input (stored under ``mscgm_care``)."""

    format_version: int = Field(FORMAT_VERSION, ge=1)
    name: str = Field("care", min_length=1, max_length=200)
    scale: Literal[1, 2, 4] = 2
    base_channels: _Width = 48
    channel_mults: _Mults = (1, 2, 2)
    num_res_blocks: _Blocks = 1
    norm: Literal["group", "pixel"] = "pixel"
    normalization: NormalizationConfig = NormalizationConfig()
    physics: PhysicsConfig = PhysicsConfig()
    training: TrainingInfo = TrainingInfo()
    license: str = "BSD-3-Clause"
    description: str = ""
