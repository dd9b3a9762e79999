"""ScalesView: the TileInspector's scales panel (mapping and learned out scales per output,
digital bias per output; input range and bias mode as readouts)."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import torch
from torch import Tensor

from anatile.tiles import TileWithPeriphery
from anatile.widgets._base import FigurePanel, tight_layout
from anatile.widgets._plots import few_ticks, format_readouts

__all__ = ["ScalesView", "to_numpy"]


def to_numpy(t: Tensor | None) -> np.ndarray:
    """``t`` as a float64 NumPy array on the CPU (empty for None)."""
    if t is None:
        return np.zeros(0)
    return t.detach().to("cpu", torch.float64).numpy()


class ScalesView:
    """The scales panel of a tile: built once, ``update()`` moves the tile's scales, bias and
    input range into its artists and readout (the host redraws the panel).

    Args:
        tile: the inspected tile.
        add_panel: the host's panel factory ``(name, figsize, update) -> FigurePanel``.
    """

    def __init__(
        self,
        tile: TileWithPeriphery,
        add_panel: Callable[[str, tuple[float, float], Callable[[], None]], FigurePanel],
    ) -> None:
        self.tile = tile
        self.readout = widgets.HTML()
        self.panel = add_panel("scales", (11.0, 2.2), self.update)
        ax_s, ax_b = self.panel.figure.subplots(1, 2)
        n = tile.out_size
        x = np.arange(n)
        (self.map_line,) = ax_s.plot(x, np.ones(n), drawstyle="steps-mid", label="mapping")
        (self.learned_line,) = ax_s.plot(x, np.full(n, np.nan), drawstyle="steps-mid",
                                         label="learned out")
        ax_s.set_xlabel("output")
        ax_s.set_title("scales per output", fontsize=9)
        ax_s.legend(fontsize=7, loc="upper right")
        (self.bias_line,) = ax_b.plot(x, np.full(n, np.nan), drawstyle="steps-mid",
                                      color="#2ca02c")
        ax_b.set_xlabel("output")
        ax_b.set_title("digital bias", fontsize=9)
        self._no_bias = ax_b.text(0.5, 0.5, "no digital bias", transform=ax_b.transAxes,
                                  ha="center", va="center", color="#777")
        self.axes = (ax_s, ax_b)
        few_ticks(self.axes)
        tight_layout(self.panel.figure)

    def update(self) -> None:
        """Move the tile's scales, bias and input range into the artists and the readout."""
        tile = self.tile
        n = tile.out_size
        mapping = to_numpy(tile.get_mapping_scales())
        self.map_line.set_ydata(np.broadcast_to(mapping, (n,)))
        learned_t = tile.get_learned_out_scales()
        learned = (np.full(n, np.nan) if learned_t is None
                   else np.broadcast_to(to_numpy(learned_t), (n,)))
        self.learned_line.set_ydata(learned)
        bias = np.full(n, np.nan)
        has_bias = tile.digital_bias and tile.bias is not None
        if has_bias:
            bias = to_numpy(tile.bias)
        self.bias_line.set_ydata(bias)
        self._no_bias.set_visible(not has_bias)
        ax_b = self.axes[1]
        if has_bias:
            few_ticks([ax_b])
        else:
            ax_b.set_xticks([])
            ax_b.set_yticks([])
        for ax in self.axes:
            ax.relim()
            ax.autoscale_view()
        ir = tile.input_range
        bias_mode = ("digital" if tile.digital_bias else "analog column" if tile.analog_bias
                     else "none")
        self.readout.value = format_readouts({
            "mapping scales": f"{mapping.min():.4g} … {mapping.max():.4g} ({mapping.size})",
            "learned out scales": "off" if learned_t is None else
            f"{np.nanmin(learned):.4g} … {np.nanmax(learned):.4g}",
            "input range": "off" if ir is None else f"{float(ir.detach().reshape(-1)[0]):.4g}",
            "bias": bias_mode,
        })
