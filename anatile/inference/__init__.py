"""Inference physics: conductance converters, PCM noise models and drift compensation.

See ``docs/inference.md`` for the formulas. The accuracy-over-time experiment moved to
:mod:`anatile.analysis` (it runs whole models, a layer above the physics).

Importing this package registers the defaults of ``InferenceRPUConfig.noise_model`` and
``.drift_compensation`` (see :mod:`anatile.config.physics`).
"""

from anatile.config.physics import register_physics_slot
from anatile.inference.compensation import (
    BaseDriftCompensation,
    GlobalDriftCompensation,
    PerColumnDriftCompensation,
)
from anatile.inference.converter import (
    BaseConductanceConverter,
    CustomPairConductanceConverter,
    DualPairConductanceConverter,
    NPairConductanceConverter,
    SingleDeviceConductanceConverter,
    SinglePairConductanceConverter,
)
from anatile.inference.noise import (
    BaseNoiseModel,
    CustomDriftPCMLikeNoiseModel,
    DriftedState,
    PCMLikeNoiseModel,
    ProgrammedState,
)

__all__ = [
    "BaseConductanceConverter",
    "BaseDriftCompensation",
    "BaseNoiseModel",
    "CustomDriftPCMLikeNoiseModel",
    "CustomPairConductanceConverter",
    "DriftedState",
    "DualPairConductanceConverter",
    "GlobalDriftCompensation",
    "NPairConductanceConverter",
    "PCMLikeNoiseModel",
    "PerColumnDriftCompensation",
    "ProgrammedState",
    "SingleDeviceConductanceConverter",
    "SinglePairConductanceConverter",
]

register_physics_slot(
    "noise_model",
    base=BaseNoiseModel,
    default=PCMLikeNoiseModel,
    expected="a noise model such as PCMLikeNoiseModel",
)
register_physics_slot(
    "drift_compensation",
    base=BaseDriftCompensation,
    default=GlobalDriftCompensation,
    allow_none=True,
    expected="GlobalDriftCompensation, PerColumnDriftCompensation or None",
)
