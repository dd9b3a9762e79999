"""WeightsView: the TileInspector's weights panel and what the pointer does on it.

Target vs read weights (a scatter of a fixed subsample with ``y = x``), the error histogram
and the ``|error|`` heatmap, the selection markers drawn on all three, and the pointer:
hover shows the weight under it, a click selects it (through the host, which owns the
selection), the wheel zooms the heatmap and a drag pans it. The view reads the weights
through its host (:class:`WeightsHost`) and holds no state of its own beyond its artists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import ipywidgets as widgets
import numpy as np
from torch import Tensor

from anatile.analysis.metrics import WEIGHT_MAX_ERROR, WEIGHT_NRMSE
from anatile.widgets._base import F, FigurePanel, tight_layout
from anatile.widgets._interact import PlotEvents, PlotPoint
from anatile.widgets._plots import (
    few_ticks,
    format_readouts,
    histogram,
    max_pool,
    nice_ceil,
    subsample_indices,
)

__all__ = [
    "MAX_SCATTER_POINTS",
    "SELECT_COLOR",
    "ZOOM_STEP",
    "WeightsHost",
    "WeightsState",
    "WeightsView",
    "metric_readouts",
]

#: at most this many points in the target-vs-read scatter (a fixed-seed subsample).
MAX_SCATTER_POINTS = 4096
#: one wheel notch zooms the heatmap by this factor.
ZOOM_STEP = 1.25
#: colour of the selection markers in every view.
SELECT_COLOR = "#00e5ff"


def metric_readouts(stats: dict[str, float]) -> dict[str, str]:
    """The weight error readouts: name, value, unit and symbol of the library's metrics."""
    return {
        WEIGHT_NRMSE.name: f"{WEIGHT_NRMSE.format(stats['weight_nrmse'])} "
                           f"({WEIGHT_NRMSE.symbol})",
        WEIGHT_MAX_ERROR.name: f"{WEIGHT_MAX_ERROR.format(stats['weight_max_error'])} "
                               f"({WEIGHT_MAX_ERROR.symbol})",
    }


class WeightsState(NamedTuple):
    """A consistent snapshot of what the weights panel shows (normalized units, CPU)."""

    target: Tensor
    read: Tensor | None
    stats: dict[str, float]
    label: str


class WeightsHost(Protocol):
    """What the widget hosting a :class:`WeightsView` provides (the TileInspector)."""

    def add_panel(
        self, name: str, figsize: tuple[float, float], update: Callable[[], None]
    ) -> FigurePanel:
        """A figure panel redrawn by the host (``update`` runs before each redraw)."""
        ...

    def guarded(self, fn: F) -> F:
        """``fn`` wrapped so that its exceptions land in the host's log area."""
        ...

    def refresh(self, *names: str) -> None:
        """Redraw the named panels now."""
        ...

    def select(self, row: int | None, col: int | None = None) -> None:
        """Select the weight ``(row, col)``."""
        ...

    def weights_state(self) -> WeightsState:
        """Target, last read weights, their error statistics and the read's label."""
        ...


class WeightsView:
    """The weights panel of a ``[out_size, in_size]`` tile (see the module docstring).

    Args:
        host: the hosting widget.
        shape: ``(out_size, in_size)``.
        max_scatter_points: size of the scatter subsample.
    """

    def __init__(self, host: WeightsHost, shape: tuple[int, int],
                 max_scatter_points: int = MAX_SCATTER_POINTS) -> None:
        self.host = host
        self.shape = shape
        self.scatter_idx = subsample_indices(shape[0] * shape[1], max_scatter_points)
        self.readout = widgets.HTML()
        self.panel = host.add_panel("weights", (11.0, 3.3), self.update)
        fig = self.panel.figure
        ax_sc, ax_h, ax_m = fig.subplots(1, 3)
        # live artists (redrawn over the kept axes on every frame, see FigurePanel)
        live = self.panel.add_live
        self.scatter = live(ax_sc.scatter([], [], s=3, alpha=0.5, linewidths=0))
        (self._diag,) = ax_sc.plot([], [], color="k", linewidth=0.8, label="y = x")
        ax_sc.set_xlabel("target (norm. units)")
        ax_sc.set_ylabel("read (norm. units)")
        self.panel.add_sticky(ax_sc.legend(fontsize=7, loc="upper left"))  # over the points
        live(ax_sc.title)  # names what is shown: changes with every drift
        self.hist = live(ax_h.stairs(np.zeros(60), np.linspace(-1, 1, 61), fill=True,
                                     alpha=0.7))
        ax_h.set_xlabel("read − target")
        ax_h.set_title("error histogram", fontsize=9)
        self.heat = live(ax_m.imshow(np.full(shape, np.nan), aspect="auto", cmap="magma",
                                     interpolation="nearest", vmin=0.0, vmax=1.0,
                                     extent=(-0.5, shape[1] - 0.5, shape[0] - 0.5, -0.5)))
        ax_m.set_autoscale_on(False)  # the view limits are set_view's, not the image's
        self.panel.prepare_export = self.draw_heatmap
        #: ``(rows, cols)`` of matrix cells per heatmap pixel block drawn (1, 1: every cell)
        self.heat_pool = (1, 1)
        #: ``|read − target|`` of the last read (what the heatmap shows), or None
        self.abs_error: np.ndarray | None = None
        ax_m.set_title("|error|", fontsize=9)
        ax_m.set_xlabel("input")
        ax_m.set_ylabel("output")
        fig.colorbar(self.heat, ax=ax_m, fraction=0.05)
        self.axes = (ax_sc, ax_h, ax_m)
        few_ticks(self.axes)
        tight_layout(fig)
        self._build_pointer()

    # -------------------------------------------------------------- drawing
    def scatter_offsets(self) -> np.ndarray:
        """The (target, read) points drawn in the scatter, ``[k, 2]``."""
        return np.asarray(self.scatter.get_offsets(), dtype=np.float64)

    def update(self) -> None:
        """Move the host's weights into the artists and the readout.

        Axis limits and the colour scale are rounded up with :func:`nice_ceil`, so a new
        read with about the same spread keeps the axes and only the data is redrawn.
        """
        state = self.host.weights_state()
        target = state.target.numpy()
        read = None if state.read is None else state.read.numpy()
        stats, label = state.stats, state.label
        ax_sc, ax_h, _ax_m = self.axes
        idx = self.scatter_idx
        lim = float(np.abs(target).max()) if target.size else 1.0
        lim = lim if lim > 0 else 1.0
        if read is None:
            self.abs_error = None
            self.scatter.set_offsets(np.zeros((0, 2)))
            self.readout.value = format_readouts({
                "shown": "nothing yet", WEIGHT_NRMSE.name: "–", WEIGHT_MAX_ERROR.name: "–"})
            ax_sc.set_title("press Read or Program", fontsize=9)
        else:
            flat_t, flat_r = target.reshape(-1), read.reshape(-1)
            self.scatter.set_offsets(np.c_[flat_t[idx], flat_r[idx]])
            err = read - target
            top = stats["max_error"] if np.isfinite(stats["max_error"]) else None
            span = nice_ceil(top) if top else None
            counts, edges = histogram(err.reshape(-1), span=span)
            self.hist.set_data(counts, edges)
            ax_h.set_xlim(edges[0], edges[-1])
            ax_h.set_ylim(0, nice_ceil(max(1.0, counts.max() * 1.05)))
            self.abs_error = np.abs(err)
            self.heat.set_clim(0.0, span or 1e-12)
            lim = max(lim, float(np.abs(flat_r[idx]).max()) if idx.size else lim)
            ax_sc.set_title(f"target vs {label} ({idx.size} of {flat_t.size} weights)",
                            fontsize=9)
            self.readout.value = format_readouts({"shown": label, **metric_readouts(stats)})
        self.draw_heatmap()
        lim = nice_ceil(lim * 1.05)
        self._diag.set_data([-lim, lim], [-lim, lim])
        ax_sc.set_xlim(-lim, lim)
        ax_sc.set_ylim(-lim, lim)

    def draw_heatmap(self, scale: float = 1.0) -> None:
        """Put the visible part of ``|error|`` into the heatmap image, max-pooled to at most
        one block per screen pixel (a single bad cell stays visible); the image's extent
        keeps data coordinates equal to cell indices, so hover and click resolve the exact
        cell.

        Args:
            scale: pixels per live-frame pixel (an export at a higher dpi pools less; SVG,
                ``inf``, gets every cell).
        """
        ax_m = self.axes[2]
        n_rows, n_cols = self.shape
        values = self.abs_error
        if values is None:
            self.heat.set_data(np.full((1, 1), np.nan))
            self.heat.set_extent((-0.5, n_cols - 0.5, n_rows - 0.5, -0.5))
            return
        (x0, x1), (y1, y0) = ax_m.get_xlim(), ax_m.get_ylim()  # y axis is inverted
        c0 = max(0, int(np.floor(min(x0, x1) + 0.5)))
        c1 = min(n_cols, int(np.ceil(max(x0, x1) + 0.5)))
        r0 = max(0, int(np.floor(min(y0, y1) + 0.5)))
        r1 = min(n_rows, int(np.ceil(max(y0, y1) + 0.5)))
        bbox = ax_m.get_window_extent()
        fr = max(1, int(np.ceil((r1 - r0) / max(bbox.height * scale, 1.0))))
        fc = max(1, int(np.ceil((c1 - c0) / max(bbox.width * scale, 1.0))))
        pooled = max_pool(values[r0:r1, c0:c1], fr, fc)
        self.heat_pool = (fr, fc)
        self.heat.set_data(pooled)
        self.heat.set_extent((c0 - 0.5, c0 + pooled.shape[1] * fc - 0.5,
                              r0 + pooled.shape[0] * fr - 0.5, r0 - 0.5))

    def place_markers(self, selected: tuple[int, int] | None,
                      values: tuple[float, float | None] | None) -> None:
        """Show the selection markers at ``selected`` (target and read value ``values``), or
        hide them (either None). Overlays: ``panel.render_overlays()`` redraws them."""
        visible = values is not None and selected is not None
        for artist in (self.heat_marker, self.scatter_marker, self.hist_marker):
            artist.set_visible(visible)
        if values is None or selected is None:
            return
        row, col = selected
        target, read = values
        self.heat_marker.set_data([col], [row])
        self.scatter_marker.set_data([target], [target if read is None else read])
        self.hist_marker.set_xdata([0.0 if read is None else read - target] * 2)

    # -------------------------------------------------------------- pointer
    def _build_pointer(self) -> None:
        host = self.host
        self.hover_readout = widgets.HTML("<span style='color:#777'>hover a plot</span>")
        self.hover_readout.add_class("anatile-hover")
        ax_sc, ax_h, ax_m = self.axes
        style = {"color": SELECT_COLOR, "markerfacecolor": "none", "markeredgewidth": 2.0,
                 "visible": False}
        (self.heat_marker,) = ax_m.plot([], [], marker="s", markersize=11,
                                        markeredgecolor=SELECT_COLOR, **style)
        (self.scatter_marker,) = ax_sc.plot([], [], marker="o", markersize=10,
                                            markeredgecolor="#d62728",
                                            **{**style, "color": "#d62728"})
        self.hist_marker = ax_h.axvline(0.0, color="#d62728", linewidth=1.5, visible=False)
        for artist in (self.heat_marker, self.scatter_marker, self.hist_marker):
            self.panel.add_overlay(artist)
        self.events = PlotEvents(self.panel, on_hover=host.guarded(self._on_hover),
                                 on_click=host.guarded(self._on_click),
                                 on_wheel=host.guarded(self._on_wheel),
                                 on_drag=host.guarded(self._on_drag))
        self.reset_zoom_button = widgets.Button(description="Reset zoom", icon="expand",
                                                layout=widgets.Layout(width="auto"))
        self.reset_zoom_button.on_click(host.guarded(lambda _b: self.zoom()))
        self.zoom_box = widgets.HBox([
            self.reset_zoom_button,
            widgets.HTML("<span style='color:#777'>heatmap: wheel zooms, drag pans, "
                         "click selects</span>"),
        ])

    def cell(self, point: PlotPoint) -> tuple[int, int] | None:
        """The weight under a point of the heatmap, or the nearest drawn point of the scatter."""
        ax_sc, _ax_h, ax_m = self.axes
        n_rows, n_cols = self.shape
        if point.axes is ax_m:
            row, col = int(round(point.y)), int(round(point.x))
            if 0 <= row < n_rows and 0 <= col < n_cols:
                return row, col
            return None
        if point.axes is ax_sc:
            offsets = self.scatter_offsets()
            if not len(offsets):
                return None
            x0, x1 = ax_sc.get_xlim()
            y0, y1 = ax_sc.get_ylim()
            d = (((offsets[:, 0] - point.x) / (x1 - x0)) ** 2
                 + ((offsets[:, 1] - point.y) / (y1 - y0)) ** 2)
            flat = int(self.scatter_idx[int(np.argmin(d))])
            return divmod(flat, n_cols)
        return None

    def _on_hover(self, point: PlotPoint) -> None:
        cell = self.cell(point)
        if cell is None:
            return
        row, col = cell
        state = self.host.weights_state()
        target = float(state.target[row, col])
        read = None if state.read is None else float(state.read[row, col])
        items = {"row": str(row), "col": str(col), "target": f"{target:.4g}"}
        if read is not None:
            items["weight"] = f"{read:.4g}"
            items["|error|"] = f"{abs(read - target):.4g}"
        self.hover_readout.value = format_readouts(items)

    def _on_click(self, point: PlotPoint) -> None:
        cell = self.cell(point)
        if cell is not None:
            self.host.select(*cell)

    def _on_wheel(self, point: PlotPoint, delta: float) -> None:
        ax_m = self.axes[2]
        if point.axes is not ax_m or delta == 0:
            return
        factor = ZOOM_STEP if delta > 0 else 1.0 / ZOOM_STEP
        (x0, x1), (y1, y0) = ax_m.get_xlim(), ax_m.get_ylim()  # y axis is inverted
        self.set_view((point.x + (x0 - point.x) * factor, point.x + (x1 - point.x) * factor),
                      (point.y + (y0 - point.y) * factor, point.y + (y1 - point.y) * factor))

    def _on_drag(self, start: PlotPoint, end: PlotPoint) -> None:
        ax_m = self.axes[2]
        if start.axes is not ax_m:
            return
        dx, dy = start.x - end.x, start.y - end.y
        (x0, x1), (y1, y0) = ax_m.get_xlim(), ax_m.get_ylim()
        self.set_view((x0 + dx, x1 + dx), (y0 + dy, y1 + dy))

    def set_view(self, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
        """Heatmap view limits (cell centres at integers), kept inside the matrix."""
        n_rows, n_cols = self.shape

        def clamp(lo: float, hi: float, n: int) -> tuple[float, float]:
            width = min(max(hi - lo, 1.0), float(n))
            lo = min(max(lo, -0.5), n - 0.5 - width)
            return lo, lo + width

        x0, x1 = clamp(*xlim, n_cols)
        y0, y1 = clamp(*ylim, n_rows)
        ax_m = self.axes[2]
        ax_m.set_xlim(x0, x1)
        ax_m.set_ylim(y1, y0)
        self.host.refresh("weights")

    def zoom(self, rows: tuple[int, int] | None = None,
             cols: tuple[int, int] | None = None) -> None:
        """Show rows ``rows[0] … rows[1]`` and columns ``cols[0] … cols[1]`` (inclusive) of the
        heatmap; ``zoom()`` shows the whole matrix.

        Raises:
            ValueError: if a range is not two indices ``first <= last`` inside the tile.
        """
        n_rows, n_cols = self.shape
        for name, rng, n in (("rows", rows, n_rows), ("cols", cols, n_cols)):
            if rng is not None and (len(rng) != 2 or not 0 <= rng[0] <= rng[1] < n):
                raise ValueError(f"{name}: expected (first, last) with 0 <= first <= last < "
                                 f"{n}, got {rng!r}")
        r0, r1 = rows if rows is not None else (0, n_rows - 1)
        c0, c1 = cols if cols is not None else (0, n_cols - 1)
        self.set_view((c0 - 0.5, c1 + 0.5), (r0 - 0.5, r1 + 0.5))

    def close(self) -> None:
        """Stop listening to the pointer."""
        self.events.close()
