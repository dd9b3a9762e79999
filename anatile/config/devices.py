"""Resistive device models of the trainable analog core."""

from __future__ import annotations

from dataclasses import dataclass

from anatile.config.base import ConfigBase, check_number
from anatile.exceptions import ConfigError

__all__ = ["ConstantStepDevice", "IdealDevice"]


@dataclass
class IdealDevice(ConfigBase):
    """A device without step size, bounds or variation (weights change exactly).

    Example:
        >>> from anatile.config import IdealDevice, RPUConfig
        >>> type(RPUConfig(device=IdealDevice()).device).__name__
        'IdealDevice'
    """


@dataclass
class ConstantStepDevice(ConfigBase):
    """Device whose every pulse changes the weight by a constant step ``dw_min``.

    All quantities are in normalized conductance units (the array's weight units).

    Attributes:
        dw_min: mean step size of one pulse.
        dw_min_dtod: device-to-device spread of the step size (relative std).
        dw_min_std: cycle-to-cycle spread of each step (relative std).
        w_max: mean upper bound of a weight.
        w_min: mean lower bound of a weight.
        w_max_dtod: device-to-device spread of ``w_max`` (relative std).
        w_min_dtod: device-to-device spread of ``w_min`` (relative std).
        up_down: mean relative asymmetry of up vs down steps.
        up_down_dtod: device-to-device spread of the up/down asymmetry.

    Example:
        >>> from anatile.config import ConstantStepDevice, RPUConfig
        >>> from anatile.tiles import TileWithPeriphery
        >>> cfg = RPUConfig(device=ConstantStepDevice(dw_min=0.002))
        >>> tile = TileWithPeriphery(4, 8, rpu_config=cfg)
        >>> tile.analog_core.dw_up.shape  # one up-step per device, drawn at construction
        torch.Size([4, 8])
    """

    dw_min: float = 0.001
    dw_min_dtod: float = 0.3
    dw_min_std: float = 0.3
    w_max: float = 0.6
    w_min: float = -0.6
    w_max_dtod: float = 0.3
    w_min_dtod: float = 0.3
    up_down: float = 0.0
    up_down_dtod: float = 0.01

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_number(owner, "dw_min", self.dw_min, lo=0.0, lo_open=True)
        for name in ("dw_min_dtod", "dw_min_std", "w_max_dtod", "w_min_dtod", "up_down_dtod"):
            check_number(owner, name, getattr(self, name), lo=0.0)
        check_number(owner, "w_max", self.w_max, lo=0.0, lo_open=True)
        check_number(owner, "w_min", self.w_min, hi=0.0, hi_open=True)
        check_number(owner, "up_down", self.up_down, lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
        if self.w_min >= self.w_max:
            raise ConfigError(f"{owner}.w_min: expected < w_max ({self.w_max}), got {self.w_min}")
