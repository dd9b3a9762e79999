"""Tiles: the analog core (crossbar) and the tile with its digital periphery."""

from anatile.tiles.analog_core import AnalogCore
from anatile.tiles.autograd import AnalogContext
from anatile.tiles.events import ProgrammingReport, TileEvent
from anatile.tiles.factory import make_tile
from anatile.tiles.inference_tile import DeviceSlice, InferenceDeviceState, InferenceTile
from anatile.tiles.periphery import TileWithPeriphery

__all__ = [
    "AnalogContext",
    "AnalogCore",
    "DeviceSlice",
    "InferenceDeviceState",
    "InferenceTile",
    "ProgrammingReport",
    "TileEvent",
    "TileWithPeriphery",
    "make_tile",
]
