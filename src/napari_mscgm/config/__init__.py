"""Validated configurations: pydantic objects, never loose dicts.

- :mod:`.model`: :class:`ModelConfig`, the ``mscgm`` document of a weights file, and
  :class:`CAREConfig` for the CARE-like baseline.
- :mod:`.restore`: :class:`RestoreOptions`, what every restoration is asked to do.
- :mod:`.metadata`: :class:`RunMetadata`, what a restoration records on its output.
- :mod:`.train`: one training recipe per algorithm (:class:`MSCGMTrainConfig`,
  :class:`CARETrainConfig`), discriminated by ``algorithm``.
- :mod:`.simulation`: :class:`SimulationConfig`, the physical simulator's.

Only pydantic is imported here (no numpy, no torch).
"""

from __future__ import annotations

from ._base import Strict, first_error
from .metadata import RunMetadata
from .model import (
    FORMAT_VERSION,
    BridgeConfig,
    CalibrationConfig,
    CAREConfig,
    GeneratorConfig,
    ModelConfig,
    NetworksConfig,
    NormalizationConfig,
    ObservationBlend,
    PhysicsConfig,
    TrainingInfo,
    UNetConfig,
)
from .restore import RestoreOptions
from .simulation import Camera, Microscope, SimulationConfig
from .train import (
    CARETrainConfig,
    DataConfig,
    MSCGMTrainConfig,
    StageConfig,
    TrainConfig,
    parse_train_config,
)

__all__ = [
    "FORMAT_VERSION",
    "BridgeConfig",
    "CAREConfig",
    "CARETrainConfig",
    "CalibrationConfig",
    "Camera",
    "DataConfig",
    "GeneratorConfig",
    "MSCGMTrainConfig",
    "Microscope",
    "ModelConfig",
    "NetworksConfig",
    "NormalizationConfig",
    "ObservationBlend",
    "PhysicsConfig",
    "RestoreOptions",
    "RunMetadata",
    "SimulationConfig",
    "StageConfig",
    "Strict",
    "TrainConfig",
    "TrainingInfo",
    "UNetConfig",
    "first_error",
    "parse_train_config",
]
