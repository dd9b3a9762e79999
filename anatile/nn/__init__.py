"""Analog layers, the analog optimizer and model conversion helpers."""

from anatile.nn.conv import AnalogConv2d
from anatile.nn.conversion import (
    analog_tiles,
    convert_to_analog,
    drift_analog_weights,
    inference_tiles,
    program_analog_weights,
)
from anatile.nn.linear import AnalogLinear
from anatile.nn.optim import AnalogSGD

__all__ = [
    "AnalogConv2d",
    "AnalogLinear",
    "AnalogSGD",
    "analog_tiles",
    "convert_to_analog",
    "drift_analog_weights",
    "inference_tiles",
    "program_analog_weights",
]
