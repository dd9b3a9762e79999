"""Where analysis finds layers and tiles, and how it copies them without side effects.

Every per-layer and per-model computation of :mod:`anatile.analysis` goes through
:func:`layer_tiles` and :func:`analog_layers`, so a layer that spans several tiles (a tile
array) is handled the same way as a layer with one tile: the tiles are the
:class:`~anatile.tiles.TileWithPeriphery` modules below the layer, in module order.
"""

from __future__ import annotations

import copy
from typing import TypeVar

from torch import nn

from anatile.events import EventHub
from anatile.exceptions import TileError
from anatile.nn.conv import AnalogConv2d
from anatile.nn.linear import AnalogLinear
from anatile.tiles.periphery import TileWithPeriphery

__all__ = ["analog_layers", "detached_copy", "layer_tiles"]

M = TypeVar("M", bound=nn.Module)

_LAYER_TYPES: tuple[type[nn.Module], ...] = (AnalogLinear, AnalogConv2d)


def layer_tiles(layer: nn.Module) -> list[tuple[str, TileWithPeriphery]]:
    """The tiles of ``layer`` with their names below it (``""`` for a bare tile).

    Args:
        layer: an analog layer (one tile or a tile array) or a tile.

    Returns:
        ``(name, tile)`` in module order; empty when the module holds no tile.
    """
    return [(name, mod) for name, mod in layer.named_modules()
            if isinstance(mod, TileWithPeriphery)]


def analog_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The analog layers of ``model``: analog ``Linear``/``Conv2d`` layers, and bare tiles
    that are not inside one, with their qualified names, in module order.

    Args:
        model: a model, an analog layer or a tile.

    Raises:
        TypeError: if ``model`` is not a ``torch.nn.Module``.
        TileError: if it holds no analog tile.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    layers: list[tuple[str, nn.Module]] = []
    covered: set[int] = set()
    for name, mod in model.named_modules():
        if id(mod) in covered:
            continue
        if isinstance(mod, _LAYER_TYPES) or isinstance(mod, TileWithPeriphery):
            layers.append((name or type(mod).__name__, mod))
            covered.update(id(m) for m in mod.modules())
    if not layers:
        raise TileError("model: no analog tile found (convert it with convert_to_analog first)")
    return layers


def detached_copy(module: M) -> M:
    """A deep copy of ``module`` whose tiles have fresh, empty event hubs.

    Subscribers (open widgets) of the original tiles are not copied, and nothing in
    ``module`` changes.
    """
    memo: dict[int, object] = {}
    for mod in module.modules():
        if isinstance(mod, TileWithPeriphery):
            memo[id(mod.events)] = EventHub()
    return copy.deepcopy(module, memo)
