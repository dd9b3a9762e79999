"""Complete tile configurations: ``RPUConfig`` (trainable) and ``InferenceRPUConfig``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anatile.config.base import ConfigBase
from anatile.config.devices import ConstantStepDevice, IdealDevice
from anatile.config.parameters import (
    IOParameters,
    MappingParameter,
    PrePostProcessingParameter,
    PulseType,
    UpdateParameters,
    WeightClipParameter,
    WeightRemapParameter,
)
from anatile.config.physics import check_physics, physics_default
from anatile.exceptions import ConfigError

__all__ = ["InferenceRPUConfig", "RPUConfig", "SingleRPUConfig"]


@dataclass
class RPUConfig(ConfigBase):
    """Configuration of a trainable analog tile with pulsed updates.

    Attributes:
        mapping: weight scaling, digital bias, out scaling.
        pre_post: digital pre-processing (the input range).
        forward: IO model of the forward MVM.
        backward: IO model of the backward (transposed) MVM.
        update: pulsed update settings.
        device: device model of the crossbar (``ConstantStepDevice`` or ``IdealDevice``).

    Example:
        >>> cfg = RPUConfig()
        >>> cfg.forward.out_noise = 0.02   # tweak in place; a tile copies it when built
        >>> RPUConfig.from_json(cfg.to_json()) == cfg
        True
    """

    mapping: MappingParameter = field(default_factory=MappingParameter)
    pre_post: PrePostProcessingParameter = field(default_factory=PrePostProcessingParameter)
    forward: IOParameters = field(default_factory=IOParameters)
    backward: IOParameters = field(default_factory=IOParameters)
    update: UpdateParameters = field(default_factory=UpdateParameters)
    device: Any = field(default_factory=ConstantStepDevice)

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.device, (ConstantStepDevice, IdealDevice)):
            raise ConfigError(
                f"{type(self).__name__}.device: expected ConstantStepDevice or IdealDevice, "
                f"got {type(self.device).__name__}"
            )
        _check_type(self, "mapping", MappingParameter)
        _check_type(self, "pre_post", PrePostProcessingParameter)
        _check_type(self, "forward", IOParameters)
        _check_type(self, "backward", IOParameters)
        _check_type(self, "update", UpdateParameters)


SingleRPUConfig = RPUConfig
"""aihwkit's name of the trainable single-device configuration (an alias of
:class:`RPUConfig`)."""


def _perfect_io() -> IOParameters:
    return IOParameters(is_perfect=True)


def _float_update() -> UpdateParameters:
    return UpdateParameters(pulse_type=PulseType.NONE)


@dataclass
class InferenceRPUConfig(RPUConfig):
    """Configuration of an inference tile: PCM noise model and drift compensation.

    Training (hardware-aware) uses exact floating-point updates and a perfect backward pass,
    as in aihwkit; the forward pass keeps the full IO model.

    The defaults of the two physics fields are registered by ``anatile.inference`` (see
    :mod:`anatile.config.physics`): config never imports the physics layer above it.

    Attributes:
        noise_model: programming/drift/read noise model (default ``PCMLikeNoiseModel()``).
        drift_compensation: ``GlobalDriftCompensation()`` (default),
            ``PerColumnDriftCompensation()`` or None.
        clip: weight clipping after each training step (off by default).
        remap: weight remapping into the scales after each training step (off by default).

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.inference import PCMLikeNoiseModel, PerColumnDriftCompensation
        >>> cfg = InferenceRPUConfig(noise_model=PCMLikeNoiseModel(prog_noise_scale=0.5),
        ...                          drift_compensation=PerColumnDriftCompensation())
        >>> InferenceRPUConfig.from_dict(cfg.to_dict()) == cfg  # round-trips through dicts
        True
    """

    backward: IOParameters = field(default_factory=_perfect_io)
    update: UpdateParameters = field(default_factory=_float_update)
    device: Any = field(default_factory=IdealDevice)
    noise_model: Any = field(default_factory=physics_default("noise_model"))
    drift_compensation: Any = field(default_factory=physics_default("drift_compensation"))
    clip: WeightClipParameter = field(default_factory=WeightClipParameter)
    remap: WeightRemapParameter = field(default_factory=WeightRemapParameter)

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_physics(owner, "noise_model", self.noise_model)
        check_physics(owner, "drift_compensation", self.drift_compensation)
        _check_type(self, "clip", WeightClipParameter)
        _check_type(self, "remap", WeightRemapParameter)


def _check_type(obj: object, name: str, expected: type) -> None:
    value = getattr(obj, name)
    if not isinstance(value, expected):
        raise ConfigError(
            f"{type(obj).__name__}.{name}: expected {expected.__name__}, "
            f"got {type(value).__name__}"
        )
