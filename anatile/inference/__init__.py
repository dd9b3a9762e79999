"""Inference physics: conductance converters, PCM noise models and drift compensation.

See ``docs/inference.md`` for the formulas and an accuracy-over-time experiment.
"""

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
from anatile.inference.evaluation import AccuracyOverTime, accuracy_over_time
from anatile.inference.noise import (
    BaseNoiseModel,
    CustomDriftPCMLikeNoiseModel,
    DriftedState,
    PCMLikeNoiseModel,
    ProgrammedState,
)

__all__ = [
    "AccuracyOverTime",
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
    "accuracy_over_time",
]
