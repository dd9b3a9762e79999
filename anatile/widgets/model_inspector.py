"""ModelInspector: pick an analog layer of a torch model and inspect its tile."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from torch import nn

from anatile.tiles import TileWithPeriphery
from anatile.widgets._base import DEFAULT_MIN_INTERVAL_S, AnatileWidget
from anatile.widgets.tile_inspector import TileInspector

__all__ = ["ModelInspector"]


def _analog_layers(model: nn.Module) -> list[tuple[str, TileWithPeriphery]]:
    """``(label, tile)`` of every tile in ``model``, in module order."""
    parents = dict(model.named_modules())
    layers = []
    for name, module in model.named_modules():
        if not isinstance(module, TileWithPeriphery):
            continue
        # a layer's tile is its child: name the layer, not the tile attribute
        layer_name, _, _ = name.rpartition(".")
        owner = parents.get(layer_name, module) if layer_name else module
        shown = layer_name or name or "(model)"
        if owner is module:
            kind = type(module).__name__
        else:
            kind = f"{type(owner).__name__}, {type(module).__name__}"
        layers.append((f"{shown} ({kind}, {module.out_size}×{module.in_size})", module))
    return layers


class ModelInspector(AnatileWidget):
    """A dropdown of the analog layers of ``model``; below it, the chosen layer's
    :class:`TileInspector` (built on first selection and kept, so switching back keeps its
    state).

    Args:
        model: a torch module containing analog layers (e.g. from ``convert_to_analog``).
        min_interval: passed on to the tile inspectors.

    Raises:
        TypeError: if ``model`` is not a ``torch.nn.Module``.
        ValueError: if it has no analog tile.

    Example:
        >>> from anatile.nn import AnalogLinear
        >>> model = nn.Sequential(AnalogLinear(8, 4, seed=0), nn.ReLU(), AnalogLinear(4, 2))
        >>> mi = ModelInspector(model)
        >>> [label.split(" ")[0] for label in mi.layer_names]
        ['0', '2']
    """

    def __init__(self, model: nn.Module, min_interval: float = DEFAULT_MIN_INTERVAL_S) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        layers = _analog_layers(model)
        if not layers:
            raise ValueError("model: expected at least one analog layer (no analog tile found; "
                             "convert the model with anatile.nn.convert_to_analog)")
        super().__init__(min_interval=min_interval)
        self.model = model
        self._min_interval = min_interval
        self._tiles = dict(layers)
        self._inspectors: dict[str, TileInspector] = {}
        #: labels of the analog layers, in module order
        self.layer_names = [label for label, _ in layers]
        self.layer = widgets.Dropdown(options=self.layer_names, value=self.layer_names[0],
                                      description="layer",
                                      layout=widgets.Layout(width="520px"))
        self.container = widgets.VBox()
        self.layer.observe(self._guarded(lambda change: self._show(change["new"])),
                           names="value")
        self.children = [self.layer, self.container, self._error_label, self.log_area]
        self._guarded(self._show)(self.layer.value)

    @property
    def inspector(self) -> TileInspector:
        """The inspector of the selected layer."""
        return self._inspectors[self.layer.value]

    def _show(self, label: str) -> None:
        if label not in self._inspectors:
            self._inspectors[label] = TileInspector(self._tiles[label], self._min_interval)
        self.container.children = [self._inspectors[label]]

    def _repr_png_(self) -> bytes:
        """The selected layer's inspector as one PNG."""
        return self.inspector._repr_png_()

    def _closers(self) -> list[Any]:
        return [*(insp.close for insp in self._inspectors.values()), *super()._closers()]
