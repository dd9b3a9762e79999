"""Configuration dataclasses (mutable, self-validating, JSON round-trip)."""

from anatile.config.base import ConfigBase, register_config_type
from anatile.config.devices import ConstantStepDevice, IdealDevice
from anatile.config.parameters import (
    BoundManagementType,
    InputRangeParameter,
    IOParameters,
    MappingParameter,
    NoiseManagementType,
    PrePostProcessingParameter,
    PulseType,
    UpdateParameters,
    WeightClipParameter,
    WeightClipType,
    WeightRemapParameter,
    WeightRemapType,
)
from anatile.config.rpu_config import InferenceRPUConfig, RPUConfig, SingleRPUConfig

__all__ = [
    "BoundManagementType",
    "ConfigBase",
    "ConstantStepDevice",
    "IOParameters",
    "IdealDevice",
    "InferenceRPUConfig",
    "InputRangeParameter",
    "MappingParameter",
    "NoiseManagementType",
    "PrePostProcessingParameter",
    "PulseType",
    "RPUConfig",
    "SingleRPUConfig",
    "UpdateParameters",
    "WeightClipParameter",
    "WeightClipType",
    "WeightRemapParameter",
    "WeightRemapType",
    "register_config_type",
]
