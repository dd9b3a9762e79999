"""Config dataclasses: JSON round trips, unknown keys, bad values (ConfigError naming fields)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anatile.config import (
    ConstantStepDevice,
    IdealDevice,
    InputRangeParameter,
    IOParameters,
    MappingParameter,
    NoiseManagementType,
    RPUConfig,
    UpdateParameters,
)
from anatile.exceptions import ConfigError


def test_rpu_config_round_trips_through_json() -> None:
    cfg = RPUConfig()
    cfg.forward.out_noise = 0.02
    cfg.forward.noise_management = NoiseManagementType.MAX
    cfg.mapping.weight_scaling_columnwise = True
    cfg.device = IdealDevice()
    again = RPUConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(cfg.to_json())["forward"]["noise_management"] == "max"


@settings(max_examples=30, deadline=None)
@given(
    out_noise=st.floats(0.0, 1.0),
    out_bound=st.floats(0.1, 100.0),
    inp_res=st.floats(0.0, 1.0),
    bl=st.integers(1, 200),
    dw_min=st.floats(1e-5, 0.1),
    omega=st.floats(0.0, 5.0),
    columnwise=st.booleans(),
)
def test_random_configs_round_trip(out_noise: float, out_bound: float, inp_res: float, bl: int,
                                   dw_min: float, omega: float, columnwise: bool) -> None:
    cfg = RPUConfig(
        forward=IOParameters(out_noise=out_noise, out_bound=out_bound, inp_res=inp_res),
        update=UpdateParameters(desired_bl=bl),
        device=ConstantStepDevice(dw_min=dw_min),
        mapping=MappingParameter(weight_scaling_omega=omega, weight_scaling_columnwise=columnwise),
    )
    assert RPUConfig.from_dict(cfg.to_dict()) == cfg
    assert RPUConfig.from_json(cfg.to_json()) == cfg


def test_unknown_keys_are_rejected_with_their_name() -> None:
    data = RPUConfig().to_dict()
    data["forward"]["out_nosie"] = 0.1
    with pytest.raises(ConfigError, match="out_nosie"):
        RPUConfig.from_dict(data)
    with pytest.raises(ConfigError, match="bogus"):
        IOParameters.from_dict({"bogus": 1})


@pytest.mark.parametrize(
    "build,field",
    [
        (lambda: IOParameters(out_noise=-0.1), "out_noise"),
        (lambda: IOParameters(out_bound=0.0), "out_bound"),
        (lambda: IOParameters(inp_res=float("inf")), "inp_res"),
        (lambda: IOParameters(max_bm_res=0.0), "max_bm_res"),
        (lambda: IOParameters(max_bm_factor=float("nan")), "max_bm_factor"),
        (lambda: IOParameters(noise_management="loud"), "noise_management"),  # type: ignore[arg-type]
        (lambda: UpdateParameters(desired_bl=0), "desired_bl"),
        (lambda: ConstantStepDevice(dw_min=0.0), "dw_min"),
        (lambda: ConstantStepDevice(w_min=0.5), "w_min"),
        (lambda: MappingParameter(weight_scaling_omega=-1.0), "weight_scaling_omega"),
        (lambda: InputRangeParameter(init_value=0.0), "init_value"),
        (lambda: InputRangeParameter(enable="yes"), "enable"),  # type: ignore[arg-type]
        (lambda: RPUConfig(device="pcm"), "device"),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(build, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=field):
        build()
    with pytest.raises(ValueError):  # ConfigError is also a ValueError
        build()


def test_in_place_edits_are_validated_on_demand() -> None:
    cfg = RPUConfig()
    cfg.update.desired_bl = -3
    with pytest.raises(ConfigError, match="desired_bl"):
        cfg.validate()
