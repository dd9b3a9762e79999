"""Tiles: the analog core (crossbar) and the tile with its digital periphery."""

from anatile.tiles.analog_core import AnalogCore
from anatile.tiles.autograd import AnalogContext
from anatile.tiles.events import ProgrammingReport, TileEvent
from anatile.tiles.factory import make_tile
from anatile.tiles.inference_tile import DeviceSlice, InferenceDeviceState, InferenceTile
from anatile.tiles.periphery import TileWithPeriphery
from anatile.tiles.programming import (
    ClosedLoopProgramming,
    NoiseModelProgramming,
    ProgrammingContext,
    ProgrammingStrategy,
)

__all__ = [
    "AnalogContext",
    "AnalogCore",
    "ClosedLoopProgramming",
    "DeviceSlice",
    "InferenceDeviceState",
    "InferenceTile",
    "NoiseModelProgramming",
    "ProgrammingContext",
    "ProgrammingReport",
    "ProgrammingStrategy",
    "TileEvent",
    "TileWithPeriphery",
    "make_tile",
]
