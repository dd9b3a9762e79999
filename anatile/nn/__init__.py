"""Analog layers, the analog optimizer and model conversion helpers."""

from anatile.nn.conv import AnalogConv2d
from anatile.nn.conversion import (
    analog_tiles,
    convert_to_analog,
    drift_analog_weights,
    inference_tiles,
    program_analog_weights,
)
from anatile.nn.layer import AnalogLayerBase
from anatile.nn.linear import AnalogLinear
from anatile.nn.optim import AnalogSGD
from anatile.nn.tile_array import TileArray, TilePlacement, split_sizes

__all__ = [
    "AnalogConv2d",
    "AnalogLayerBase",
    "AnalogLinear",
    "AnalogSGD",
    "TileArray",
    "TilePlacement",
    "analog_tiles",
    "convert_to_analog",
    "drift_analog_weights",
    "inference_tiles",
    "program_analog_weights",
    "split_sizes",
]
