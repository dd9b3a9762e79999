"""Every config default equals aihwkit 1.2.0's for the fields both define."""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

import pytest
from parity_fixtures import load_fixture

from anatile.config import (
    ConstantStepDevice,
    InferenceRPUConfig,
    InputRangeParameter,
    IOParameters,
    MappingParameter,
    RPUConfig,
    UpdateParameters,
    WeightClipParameter,
    WeightRemapParameter,
)
from anatile.inference import (
    GlobalDriftCompensation,
    PCMLikeNoiseModel,
    SingleDeviceConductanceConverter,
    SinglePairConductanceConverter,
)

OURS: dict[str, Any] = {
    "IOParameters": IOParameters,
    "MappingParameter": MappingParameter,
    "InputRangeParameter": InputRangeParameter,
    "UpdateParameters": UpdateParameters,
    "ConstantStepDevice": ConstantStepDevice,
    "WeightClipParameter": WeightClipParameter,
    "WeightRemapParameter": WeightRemapParameter,
    "RPUConfig": RPUConfig,
    "InferenceRPUConfig": InferenceRPUConfig,
    "PCMLikeNoiseModel": PCMLikeNoiseModel,
    "GlobalDriftCompensation": GlobalDriftCompensation,
    "SinglePairConductanceConverter": SinglePairConductanceConverter,
    "SingleDeviceConductanceConverter": SingleDeviceConductanceConverter,
}

# Fields both define on purpose differently, with the reason (docs/aihwkit.md). Empty: any
# entry here must be argued in the docs.
DIFFERENT_ON_PURPOSE: dict[str, str] = {}


def _ours_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name.lower()
    return value


def _attributes(obj: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def _compare(ours: Any, theirs: Any, path: str, compared: list[str],
             mismatches: list[str]) -> None:
    if isinstance(theirs, dict):
        if "__class__" in theirs and type(ours).__name__ != theirs["__class__"]:
            mismatches.append(f"{path}: class {type(ours).__name__} != {theirs['__class__']}")
            return
        mine = _attributes(ours)
        for name, value in theirs.items():
            if name != "__class__" and name in mine:
                _compare(mine[name], value, f"{path}.{name}", compared, mismatches)
        return
    compared.append(path)
    if path in DIFFERENT_ON_PURPOSE:
        return
    mine = _ours_value(ours)
    if isinstance(theirs, list):
        mine = list(mine) if isinstance(mine, (list, tuple)) else mine
        ok = isinstance(mine, list) and len(mine) == len(theirs) and all(
            math.isclose(float(a), float(b), rel_tol=1e-6) for a, b in zip(mine, theirs,
                                                                           strict=True))
    elif isinstance(theirs, bool) or isinstance(mine, bool):
        ok = mine is theirs
    elif isinstance(theirs, (int, float)) and isinstance(mine, (int, float)):
        ok = math.isclose(float(mine), float(theirs), rel_tol=1e-6, abs_tol=1e-12)
    else:
        ok = mine == theirs
    if not ok:
        mismatches.append(f"{path}: anatile {mine!r} != aihwkit {theirs!r}")


@pytest.mark.parametrize("name", sorted(OURS))
def test_defaults_equal_aihwkit_1_2_0(name: str) -> None:
    recorded = load_fixture("defaults")["defaults"][name]
    compared: list[str] = []
    mismatches: list[str] = []
    _compare(OURS[name](), recorded, name, compared, mismatches)
    assert not mismatches, mismatches
    if dataclasses.is_dataclass(OURS[name]):
        assert compared, f"{name}: no field in common with aihwkit's"


def test_every_shared_field_is_compared() -> None:
    """No config field of ours that aihwkit also has escapes the comparison."""
    recorded = load_fixture("defaults")["defaults"]
    total = 0
    for name, cls in OURS.items():
        if not dataclasses.is_dataclass(cls):
            continue
        theirs = recorded[name]
        for field in dataclasses.fields(cls):
            if field.name in theirs:
                total += 1
    # the IO model, mapping, input range, update, device, clip and remap fields at least
    assert total >= 60, total


def test_weight_scaling_omega_defaults_to_zero_as_in_aihwkit() -> None:
    assert MappingParameter().weight_scaling_omega == 0.0
    assert RPUConfig().mapping.weight_scaling_omega == 0.0
    assert InferenceRPUConfig().mapping.weight_scaling_omega == 0.0
