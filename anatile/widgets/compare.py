"""``compare(a, b)``: two tiles or two converters side by side, on shared axes and colours."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from torch import Tensor

from anatile.inference import BaseConductanceConverter
from anatile.tiles import InferenceTile, TileWithPeriphery
from anatile.widgets._base import AnatileWidget
from anatile.widgets._plots import error_summary, few_ticks, format_readouts, histogram
from anatile.widgets.conductance_map import ConductanceMapView

__all__ = ["TileComparison", "compare"]


def _weights_now(tile: TileWithPeriphery) -> tuple[Tensor, str]:
    """What the tile computes with now (normalized units) and what that is called.

    A programmed inference tile: its effective weights ``alpha · W(t)``; otherwise a read
    that leaves the tile's random stream where it was.
    """
    if isinstance(tile, InferenceTile) and tile.is_programmed():
        t = tile.t_inference
        label = "programmed" if t is None else f"compensated, t = {t:.3g} s"
        return tile.effective_weights().double(), label
    gen = tile.generator
    state = gen.get_state()
    try:
        weight, _ = tile.read_weights(apply_weight_scaling=False)
    finally:
        gen.set_state(state)
    return weight.double(), "read"


def _target(tile: TileWithPeriphery) -> Tensor:
    ref = tile.reference_weight
    if ref is None:
        ref = tile.get_weights(apply_weight_scaling=False)[0]
    return ref.detach()[:, : tile.in_size].to("cpu", torch.float64)


class TileComparison(AnatileWidget):
    """Two tiles, one row each: target vs weights now, error histogram, ``|error|`` heatmap.

    The rows share every axis (same scatter limits, same histogram range and counts axis)
    and one colour scale for both heatmaps, so the rows can be compared by eye. Weights are
    in normalized conductance units, as in the :class:`TileInspector`.

    Args:
        a, b: the tiles.
        names: their labels (default ``"a"``, ``"b"`` with the tile type and shape).

    Raises:
        TypeError: if a or b is not a tile.

    Example:
        >>> from anatile.tiles import TileWithPeriphery
        >>> a, b = TileWithPeriphery(4, 8, seed=0), TileWithPeriphery(4, 8, seed=1)
        >>> for tile in (a, b):
        ...     tile.set_weights(0.1 * torch.ones(4, 8))
        >>> view = TileComparison(a, b, names=["seed 0", "seed 1"])
        >>> isinstance(view, TileComparison)
        True
    """

    def __init__(self, a: TileWithPeriphery, b: TileWithPeriphery,
                 names: Sequence[str] | None = None) -> None:
        for arg, tile in (("a", a), ("b", b)):
            if not isinstance(tile, TileWithPeriphery):
                raise TypeError(f"{arg}: expected a TileWithPeriphery, got {type(tile).__name__}")
        if names is not None and len(names) != 2:
            raise ValueError(f"names: expected 2 names, got {len(names)}")
        super().__init__()
        self._holding = True
        self.tiles = [a, b]
        self.names = list(names) if names is not None else [
            f"{k}: {type(t).__name__} {t.out_size}×{t.in_size}"
            for k, t in zip("ab", self.tiles, strict=True)
        ]
        self.targets = [_target(t) for t in self.tiles]
        now = [_weights_now(t) for t in self.tiles]
        self.weights = [w for w, _ in now]
        self.labels = [label for _, label in now]
        #: error summary (RMSE, max, relative) of each tile's weights now vs its target.
        self.stats = [error_summary(t.numpy(), w.numpy())
                      for t, w in zip(self.targets, self.weights, strict=True)]
        self.panel = self._panel("compare", (11.0, 5.6), self._update)
        fig = self.panel.figure
        axes = fig.subplots(2, 3, sharex="col", gridspec_kw={"width_ratios": [1, 1, 1.15]})
        for col in (0, 1):  # scatter and histogram share y too; heatmaps keep their shapes
            axes[1, col].sharey(axes[0, col])
        self.axes = axes
        self.readout = widgets.HTML()
        self.export_box = self._export_controls()
        self.children = [self.readout, self.panel.image, self.export_box, self._error_label,
                         self.log_area]
        self.refresh("compare")

    def _update(self) -> None:
        errs = [(w - t).numpy() for t, w in zip(self.targets, self.weights, strict=True)]
        top = max(float(np.abs(e).max()) if e.size else 0.0 for e in errs) or 1e-12
        lim = 1.05 * max(float(x.abs().max()) for x in [*self.targets, *self.weights])
        images = []
        for row, (target, weight, err, name, label) in enumerate(
            zip(self.targets, self.weights, errs, self.names, self.labels, strict=True)
        ):
            ax_sc, ax_h, ax_m = self.axes[row]
            for ax in (ax_sc, ax_h, ax_m):
                ax.clear()
            ax_sc.scatter(target.numpy().reshape(-1), weight.numpy().reshape(-1), s=2,
                          alpha=0.5, linewidths=0)
            ax_sc.plot([-lim, lim], [-lim, lim], color="k", linewidth=0.8)
            ax_sc.set_xlim(-lim, lim)
            ax_sc.set_ylim(-lim, lim)
            ax_sc.set_ylabel(f"{label} (norm. units)", fontsize=8)
            ax_sc.set_title(name, fontsize=9)
            counts, edges = histogram(err.reshape(-1), span=top)
            ax_h.stairs(counts, edges, fill=True, alpha=0.7)
            ax_h.set_title("error histogram", fontsize=9)
            images.append(ax_m.imshow(np.abs(err), aspect="auto", cmap="magma",
                                      interpolation="nearest", vmin=0.0, vmax=top))
            ax_m.set_title("|error| (shared colour scale)", fontsize=9)
            ax_m.set_ylabel("output", fontsize=8)
        self.axes[1, 0].set_xlabel("target (norm. units)")
        self.axes[1, 1].set_xlabel("weight − target (norm. units)")
        self.axes[1, 2].set_xlabel("input")
        few_ticks(self.axes.reshape(-1))
        fig = self.panel.figure
        if not getattr(self, "_colorbar", None):
            self._colorbar = fig.colorbar(images[0], ax=list(self.axes[:, 2]), fraction=0.05)
        else:
            self._colorbar.update_normal(images[0])
        self.readout.value = "".join(
            format_readouts({name: "", "RMSE": f"{s['rmse']:.4g}",
                             "max error": f"{s['max_error']:.4g}",
                             "relative error": f"{s['relative_error']:.3%}"})
            for name, s in zip(self.names, self.stats, strict=True)
        )


def compare(a: Any, b: Any, names: Sequence[str] | None = None, **kwargs: Any) -> AnatileWidget:
    """Two tiles (:class:`TileComparison`) or two conductance converters
    (:class:`ConductanceMapView`) side by side, on shared axes and colour scales.

    Args:
        a, b: two tiles, or two converters.
        names: labels of the two.
        **kwargs: passed to :class:`ConductanceMapView` for converters (``noise_model``,
            ``weights``, ``t_steps``, ``seed``).

    Raises:
        TypeError: if ``a`` and ``b`` are not both tiles or both converters.

    Example:
        >>> from anatile.inference import DualPairConductanceConverter as Dual
        >>> from anatile.inference import SinglePairConductanceConverter as Single
        >>> view = compare(Single(), Dual([1.0, 1.0]))
        >>> type(view).__name__
        'ConductanceMapView'
    """
    if isinstance(a, TileWithPeriphery) and isinstance(b, TileWithPeriphery):
        if kwargs:
            raise TypeError(f"compare: unexpected arguments for tiles: {sorted(kwargs)}")
        return TileComparison(a, b, names)
    if isinstance(a, BaseConductanceConverter) and isinstance(b, BaseConductanceConverter):
        return ConductanceMapView(a, b, names=names, **kwargs)
    raise TypeError(
        "compare: expected two tiles or two conductance converters, got "
        f"{type(a).__name__} and {type(b).__name__}"
    )
