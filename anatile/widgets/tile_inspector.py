"""TileInspector: scales, target vs read weights, programming and reading of one tile."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
import traitlets
from torch import Tensor

from anatile.analysis import weight_max_error, weight_nrmse
from anatile.analysis.metrics import WEIGHT_MAX_ERROR, WEIGHT_NRMSE
from anatile.tiles import ClosedLoopProgramming, InferenceTile, TileEvent, TileWithPeriphery
from anatile.widgets._base import (
    DEFAULT_MIN_INTERVAL_S,
    AnatileWidget,
    F,
    FigurePanel,
    Throttle,
    tight_layout,
)
from anatile.widgets._interact import PlotEvents, PlotPoint
from anatile.widgets._plots import (
    error_summary,
    few_ticks,
    format_readouts,
    histogram,
    subsample_indices,
)
from anatile.widgets.budget_view import ErrorBudgetView
from anatile.widgets.inference_panel import InferencePanel

__all__ = ["TileInspector"]

#: at most this many points in the target-vs-read scatter (a fixed-seed subsample).
MAX_SCATTER_POINTS = 4096
#: one wheel notch zooms the heatmap by this factor.
ZOOM_STEP = 1.25
#: colour of the selection markers in every view.
SELECT_COLOR = "#00e5ff"


def _to_numpy(t: Tensor | None) -> np.ndarray:
    if t is None:
        return np.zeros(0)
    return t.detach().to("cpu", torch.float64).numpy()


def metric_readouts(stats: dict[str, float]) -> dict[str, str]:
    """The weight error readouts: name, value, unit and symbol of the library's metrics."""
    return {
        WEIGHT_NRMSE.name: f"{WEIGHT_NRMSE.format(stats['weight_nrmse'])} "
                           f"({WEIGHT_NRMSE.symbol})",
        WEIGHT_MAX_ERROR.name: f"{WEIGHT_MAX_ERROR.format(stats['weight_max_error'])} "
                               f"({WEIGHT_MAX_ERROR.symbol})",
    }


class TileInspector(AnatileWidget):
    """Inspect a tile: its scales, programmed vs read weights, and program / read it.

    Panels:

    * **scales** — mapping scales and learned out scales per output, digital bias per output;
      input range and bias mode as readouts;
    * **weights** — target vs read weights (scatter of a fixed subsample with ``y = x``), the
      error histogram and the ``|error|`` heatmap, with RMSE / max / relative error readouts.
      Weights are compared in *normalized conductance units* (what the array holds): the
      target is ``tile.reference_weight`` (what :meth:`~TileWithPeriphery.program_weights`
      aims for) or, without one, the current array weights; "read" is the last
      ``read_weights(apply_weight_scaling=False)`` done from this widget (on opening, an
      automatic read that leaves the tile's random stream where it was);
    * **interaction** — hovering the heatmap or the scatter shows the weight under the
      pointer; a click selects it (so does :meth:`select`, or setting the :attr:`selected`
      trait) and every view highlights it; the wheel zooms the heatmap, a drag pans it;
    * **program** — learning rate, max_iter, tolerance, *Program* button and a progress bar
      fed by the tile's ``"programming_progress"`` events; after programming the tile is
      read back;
    * **read** — over_sampling and a *Read* button; **export** — figures as PNG / SVG.

    For an :class:`~anatile.tiles.InferenceTile` it adds conductance histograms per device,
    the selected weight's trace over time and a log-scale ``t_inference`` slider that calls
    ``tile.drift_weights(t)`` (see :mod:`.inference_panel`). It opens on the tile's current
    drift time and alpha and follows drifts made elsewhere (``drift_analog_weights``).

    The widget subscribes to ``tile.events``; redraws are throttled (``min_interval``) and
    happen off the emitting thread. Callback errors show in :attr:`log_area`.

    Args:
        tile: a :class:`~anatile.tiles.TileWithPeriphery` (or subclass).
        min_interval: minimum seconds between two redraws.
        max_scatter_points: size of the scatter subsample.

    Raises:
        TypeError: if ``tile`` is not a ``TileWithPeriphery``.

    Example:
        >>> tile = TileWithPeriphery(64, 64, seed=0)
        >>> tile.set_weights(torch.randn(64, 64) * 0.1)
        >>> inspector = TileInspector(tile)
        >>> inspector.select(3, 5)
        >>> inspector.selected
        (3, 5)
        >>> sorted(inspector.stats)
        ['max_error', 'relative_error', 'rmse']
    """

    #: ``(row, col)`` of the selected weight, or None (a trait: observe it, set it).
    selected = traitlets.Any(None, allow_none=True)
    #: the tile's drift time in seconds (None before a drift), kept in step with the tile.
    t_inference = traitlets.Any(None, allow_none=True)
    #: the tile's drift compensation alpha (a CPU tensor), kept in step with the tile.
    alpha = traitlets.Any(None, allow_none=True)

    def __init__(
        self,
        tile: TileWithPeriphery,
        min_interval: float = DEFAULT_MIN_INTERVAL_S,
        max_scatter_points: int = MAX_SCATTER_POINTS,
    ) -> None:
        if not isinstance(tile, TileWithPeriphery):
            raise TypeError(f"tile: expected a TileWithPeriphery, got {type(tile).__name__}")
        super().__init__(min_interval=min_interval)
        self._holding = True  # until the first refresh() at the end
        self._progress_throttle = Throttle(self._show_progress, min_interval, self._report)
        self.tile = tile
        self.target: Tensor = self._current_target()
        #: weights of the last read from this widget (normalized units), or None.
        self.read_weight: Tensor | None = None
        #: RMSE, max |error| and relative error of the last read vs the target.
        self.stats: dict[str, float] = {}
        #: the selected weight's ``weight_trace`` result (inference tiles), or None.
        self.trace: Any = None
        self._lock = threading.Lock()
        self._progress: dict[str, Any] = {"iteration": 0, "max_iter": 1, "error": float("nan")}
        self._programming_done = False
        self._scatter_idx = subsample_indices(self.target.numel(), max_scatter_points)

        self.extra: InferencePanel | None = None  # for an InferenceTile
        self._build_scales_panel()
        self._build_weights_panel()
        self._build_controls()
        self._build_interaction()
        self._subscribe(tile.events, self._guarded(self._on_tile_event))
        self.title = widgets.HTML(f"<b>{type(tile).__name__}</b> {tile.out_size}×{tile.in_size}")
        self.title.add_class("anatile-title")
        self.export_box = self._export_controls()
        self.budget_box = widgets.VBox([])
        self.budget_button = widgets.Button(description="Error budget of this tile…",
                                            icon="bar-chart",
                                            layout=widgets.Layout(width="auto"))
        self.budget_button.on_click(self._guarded(lambda _b: self.show_budget()))
        self.children = [
            self.title,
            self.scales_readout,
            self.scales_panel.image,
            self.weights_readout,
            self.hover_readout,
            self.weights_panel.image,
            self.zoom_box,
            self.selection_readout,
            self.program_box,
            self.read_box,
            widgets.HBox([self.budget_button]),
            self.budget_box,
            self.export_box,
            self._error_label,
            self.log_area,
        ]
        self.observe(self._guarded(self._on_selected), names="selected")
        self._attach_inference_panel()
        self._guarded(self._open_state)()
        self.refresh("scales", "weights")

    # -------------------------------------------------------------- model -> state
    def _current_target(self) -> Tensor:
        tile = self.tile
        ref = tile.reference_weight
        if ref is None:
            ref = tile.get_weights(apply_weight_scaling=False)[0]
        return ref.detach()[:, : tile.in_size].to("cpu", torch.float64).clone()

    def _open_state(self) -> None:
        """Show the tile as it is now: an inference tile's drift state, else a fresh read."""
        if self.extra is not None and self.extra.open_state():
            return
        self.show_weights(self._quiet_read(), label="read (on opening)", defer=True)

    def _quiet_read(self) -> Tensor:
        """A read that leaves the tile's random stream where it was (opening a view must not
        change what the user's next call draws)."""
        gen = self.tile.generator
        state = gen.get_state()
        try:
            weight, _ = self.tile.read_weights(
                apply_weight_scaling=False, over_sampling=int(self.over_sampling.value)
            )
        finally:
            gen.set_state(state)
        return weight

    def _on_tile_event(self, event: TileEvent) -> None:
        kind = event.kind
        if kind == "programming_progress":
            with self._lock:
                self._progress = dict(event.data)
                if event.data.get("iteration") == 0:
                    self._programming_done = False
            self._progress_throttle.request()
        elif kind == "programmed":
            self._progress_throttle.flush()
            self._show_done(event.data["report"])
        elif kind == "weights_set":
            self.target = self._current_target()  # same shape: the subsample stays
            self._invalidate("weights", "scales")
        elif kind in ("scales_changed", "input_range_changed"):
            self._invalidate("scales")
        elif kind == "programmed_noise":
            self.progress.max = 1
            self.progress.value = 1
            self.progress.bar_style = "success"
            self.progress_label.value = "programmed with the noise model"
        if self.extra is not None:
            self.extra.on_tile_event(event)

    def _attach_inference_panel(self) -> None:
        if isinstance(self.tile, InferenceTile):
            self.extra = InferencePanel(self.tile, self)
        if not self._closed_loop():  # e.g. programmed through a noise model: no controls
            self.program_box.children = (self.program_box.children[1],)
        if self.extra is not None:
            self.program_button.description = "Program this tile"
            self.program_button.layout.width = "auto"
            children = list(self.children)
            at = children.index(self.program_box)
            children[at:at] = self.extra.children
            self.children = children

    # ------------------------------------------ host of the inference panel (PanelHost)
    def add_panel(
        self, name: str, figsize: tuple[float, float], update: Callable[[], None]
    ) -> FigurePanel:
        """A figure panel of this widget, redrawn with the others (see :class:`PanelHost`)."""
        return self._panel(name, figsize, update)

    def guarded(self, fn: F) -> F:
        """``fn`` wrapped so that its exceptions land in :attr:`log_area`."""
        return self._guarded(fn)

    def invalidate(self, *names: str) -> None:
        """Ask for a throttled redraw of the named panels (all when none named)."""
        self._invalidate(*names)

    def show_budget(self, compute: bool = True) -> ErrorBudgetView:
        """Open this tile's error budget (:class:`~anatile.widgets.budget_view.ErrorBudgetView`,
        stacked by source over time, with the tile's diagnosis) below the controls; computed
        in the background unless ``compute`` is False. Returns the view."""
        if not self.budget_box.children:
            view = ErrorBudgetView(self.tile)
            self.budget_box.children = [view]
            if compute:
                view.compute(background=True)
        view = self.budget_box.children[0]
        assert isinstance(view, ErrorBudgetView)
        return view

    # -------------------------------------------------------------- selection
    @traitlets.validate("selected")
    def _validate_selected(self, proposal: dict[str, Any]) -> tuple[int, int] | None:
        value = proposal["value"]
        if value is None:
            return None
        out_size, in_size = self.tile.out_size, self.tile.in_size
        try:
            row, col = (int(v) for v in value)
            ok = all(float(v) == int(v) for v in value)
        except (TypeError, ValueError):
            ok = False
        if not ok or not (0 <= row < out_size and 0 <= col < in_size):
            raise traitlets.TraitError(
                f"selected: expected (row, col) with 0 <= row < {out_size} and "
                f"0 <= col < {in_size}, or None; got {value!r}"
            )
        return (row, col)

    def select(self, row: int | None, col: int | None = None) -> None:
        """Select the weight ``(row, col)`` (``select(None)`` clears the selection).

        Every view highlights it and, for an inference tile, its trace over time is shown.

        Raises:
            traitlets.TraitError: if the index is outside the tile (nothing changes).
        """
        self.selected = None if row is None else (row, col)

    def _on_selected(self, change: dict[str, Any]) -> None:
        self._place_markers()
        self._show_selection_info()
        if self.extra is not None:
            self.extra.on_selected(self.selected)
        # overlay-only renders: the views' backgrounds are unchanged
        self.weights_panel.render_overlays()
        if self.extra is not None:
            self.extra.render_highlights()

    def _selected_values(self) -> tuple[float, float | None] | None:
        """Target and read value of the selected weight (normalized units)."""
        if self.selected is None:
            return None
        row, col = self.selected
        with self._lock:
            target = float(self.target[row, col])
            read = None if self.read_weight is None else float(self.read_weight[row, col])
        return target, read

    def _place_markers(self) -> None:
        values = self._selected_values()
        visible = values is not None
        for artist in (self._heat_marker, self._scatter_marker, self._hist_marker):
            artist.set_visible(visible)
        if values is None or self.selected is None:
            return
        row, col = self.selected
        target, read = values
        self._heat_marker.set_data([col], [row])
        self._scatter_marker.set_data([target], [target if read is None else read])
        self._hist_marker.set_xdata([0.0 if read is None else read - target] * 2)

    def _show_selection_info(self) -> None:
        values = self._selected_values()
        if values is None or self.selected is None:
            self.selection_readout.value = (
                "<span style='color:#777'>click the |error| heatmap or the scatter to "
                "select a weight</span>")
            return
        row, col = self.selected
        target, read = values
        items = {"selected": f"row {row}, col {col}", "target": f"{target:.4g}"}
        if read is not None:
            items["weight"] = f"{read:.4g} ({self._read_label})"
            items["error"] = f"{read - target:+.4g}"
        html = format_readouts(items)
        if self.extra is not None:
            html += self.extra.selection_html(row, col)
        self.selection_readout.value = html

    # -------------------------------------------------------------- pointer
    def _build_interaction(self) -> None:
        self.hover_readout = widgets.HTML("<span style='color:#777'>hover a plot</span>")
        self.hover_readout.add_class("anatile-hover")
        self.selection_readout = widgets.HTML()
        self.selection_readout.add_class("anatile-selection")
        ax_sc, ax_h, ax_m = self._weight_axes
        panel = self.weights_panel
        style = {"color": SELECT_COLOR, "markerfacecolor": "none", "markeredgewidth": 2.0,
                 "visible": False}
        (self._heat_marker,) = ax_m.plot([], [], marker="s", markersize=11,
                                         markeredgecolor=SELECT_COLOR, **style)
        (self._scatter_marker,) = ax_sc.plot([], [], marker="o", markersize=10,
                                             markeredgecolor="#d62728",
                                             **{**style, "color": "#d62728"})
        self._hist_marker = ax_h.axvline(0.0, color="#d62728", linewidth=1.5, visible=False)
        for artist in (self._heat_marker, self._scatter_marker, self._hist_marker):
            panel.add_overlay(artist)
        self.events = PlotEvents(panel, on_hover=self._guarded(self._on_hover),
                                 on_click=self._guarded(self._on_click),
                                 on_wheel=self._guarded(self._on_wheel),
                                 on_drag=self._guarded(self._on_drag))
        self.reset_zoom_button = widgets.Button(description="Reset zoom", icon="expand",
                                                layout=widgets.Layout(width="auto"))
        self.reset_zoom_button.on_click(self._guarded(lambda _b: self.zoom()))
        self.zoom_box = widgets.HBox([
            self.reset_zoom_button,
            widgets.HTML("<span style='color:#777'>heatmap: wheel zooms, drag pans, "
                         "click selects</span>"),
        ])
        self._show_selection_info()

    def _cell(self, point: PlotPoint) -> tuple[int, int] | None:
        """The weight under a point of the heatmap, or the nearest drawn point of the scatter."""
        ax_sc, _ax_h, ax_m = self._weight_axes
        if point.axes is ax_m:
            row, col = int(round(point.y)), int(round(point.x))
            if 0 <= row < self.tile.out_size and 0 <= col < self.tile.in_size:
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
            flat = int(self._scatter_idx[int(np.argmin(d))])
            return divmod(flat, self.tile.in_size)
        return None

    def _on_hover(self, point: PlotPoint) -> None:
        cell = self._cell(point)
        if cell is None:
            return
        row, col = cell
        with self._lock:
            target = float(self.target[row, col])
            read = None if self.read_weight is None else float(self.read_weight[row, col])
        items = {"row": str(row), "col": str(col), "target": f"{target:.4g}"}
        if read is not None:
            items["weight"] = f"{read:.4g}"
            items["|error|"] = f"{abs(read - target):.4g}"
        self.hover_readout.value = format_readouts(items)

    def _on_click(self, point: PlotPoint) -> None:
        cell = self._cell(point)
        if cell is not None:
            self.select(*cell)

    def _on_wheel(self, point: PlotPoint, delta: float) -> None:
        ax_m = self._weight_axes[2]
        if point.axes is not ax_m or delta == 0:
            return
        factor = ZOOM_STEP if delta > 0 else 1.0 / ZOOM_STEP
        (x0, x1), (y1, y0) = ax_m.get_xlim(), ax_m.get_ylim()  # y axis is inverted
        self._set_view((point.x + (x0 - point.x) * factor, point.x + (x1 - point.x) * factor),
                       (point.y + (y0 - point.y) * factor, point.y + (y1 - point.y) * factor))

    def _on_drag(self, start: PlotPoint, end: PlotPoint) -> None:
        ax_m = self._weight_axes[2]
        if start.axes is not ax_m:
            return
        dx, dy = start.x - end.x, start.y - end.y
        (x0, x1), (y1, y0) = ax_m.get_xlim(), ax_m.get_ylim()
        self._set_view((x0 + dx, x1 + dx), (y0 + dy, y1 + dy))

    def _set_view(self, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
        """Heatmap view limits (cell centres at integers), kept inside the matrix."""
        n_rows, n_cols = self.tile.out_size, self.tile.in_size

        def clamp(lo: float, hi: float, n: int) -> tuple[float, float]:
            width = min(max(hi - lo, 1.0), float(n))
            lo = min(max(lo, -0.5), n - 0.5 - width)
            return lo, lo + width

        x0, x1 = clamp(*xlim, n_cols)
        y0, y1 = clamp(*ylim, n_rows)
        ax_m = self._weight_axes[2]
        ax_m.set_xlim(x0, x1)
        ax_m.set_ylim(y1, y0)
        self.refresh("weights")

    def zoom(self, rows: tuple[int, int] | None = None,
             cols: tuple[int, int] | None = None) -> None:
        """Show rows ``rows[0] … rows[1]`` and columns ``cols[0] … cols[1]`` (inclusive) of the
        heatmap; ``zoom()`` shows the whole matrix.

        Raises:
            ValueError: if a range is not two indices ``first <= last`` inside the tile.
        """
        for name, rng, n in (("rows", rows, self.tile.out_size),
                             ("cols", cols, self.tile.in_size)):
            if rng is not None and (len(rng) != 2 or not 0 <= rng[0] <= rng[1] < n):
                raise ValueError(f"{name}: expected (first, last) with 0 <= first <= last < "
                                 f"{n}, got {rng!r}")
        r0, r1 = rows if rows is not None else (0, self.tile.out_size - 1)
        c0, c1 = cols if cols is not None else (0, self.tile.in_size - 1)
        self._set_view((c0 - 0.5, c1 + 0.5), (r0 - 0.5, r1 + 0.5))

    # -------------------------------------------------------------- actions
    def read(self) -> Tensor:
        """Read the tile with ``over_sampling`` from the slider and show the result.

        Returns:
            The read weights (normalized conductance units, ``[out_size, in_size]``).
        """
        with self._busy(self.read_button, self.program_button):
            weight, _ = self.tile.read_weights(
                apply_weight_scaling=False, over_sampling=int(self.over_sampling.value)
            )
        self.show_weights(weight)
        return weight

    def show_weights(self, weight: Tensor, label: str = "read", defer: bool = False) -> None:
        """Compare ``weight`` (normalized units) to the target and redraw.

        Args:
            weight: ``[out_size, in_size]`` weights to compare with :attr:`target`.
            label: what they are (shown in the scatter's title).
            defer: redraw within the throttle interval instead of now.
        """
        weight = weight.detach().to("cpu", torch.float64)
        stats = error_summary(self.target.numpy(), weight.numpy())
        # the library's error metric family (what every label shows)
        stats["weight_nrmse"] = float(weight_nrmse(weight, self.target))
        stats["weight_max_error"] = float(weight_max_error(weight, self.target))
        with self._lock:
            self.read_weight = weight
            self._read_label = label
            self.stats = stats
        self._place_markers()
        self._show_selection_info()
        if defer:
            self._invalidate("weights")
        else:
            self.refresh("weights")

    def program(self) -> None:
        """Program the tile, then read it back.

        A training tile is programmed in closed loop with the learning rate / max_iter /
        tolerance of the controls; an inference tile with its noise model, then drifted to
        the slider's time.
        """
        self.progress.value = 0
        self.progress.bar_style = "info"
        with self._busy(self.read_button, self.program_button):
            self.tile.program_weights(**self._programming_options())
        if self.extra is not None:
            self.extra.drift(float(self.extra.t_slider.value))
        else:
            self.read()

    def _closed_loop(self) -> bool:
        return isinstance(self.tile.programming, ClosedLoopProgramming)

    def _programming_options(self) -> dict[str, Any]:
        """The options of the tile's programming strategy that the controls set."""
        if not self._closed_loop():
            return {}
        return {
            "learning_rate": float(self.learning_rate.value),
            "max_iter": int(self.max_iter.value),
            "tolerance": float(self.tolerance.value),
        }

    # -------------------------------------------------------------- widgets
    def _build_controls(self) -> None:
        self.learning_rate = widgets.FloatLogSlider(
            value=0.1, base=10, min=-4, max=0, step=0.1, description="learning rate",
            readout_format=".2g", style={"description_width": "initial"},
        )
        self.max_iter = widgets.BoundedIntText(
            value=1000, min=1, max=1_000_000, description="max_iter",
            layout=widgets.Layout(width="170px"),
        )
        self.tolerance = widgets.BoundedFloatText(
            value=0.01, min=0.0, max=1.0, step=0.001, description="tolerance",
            layout=widgets.Layout(width="170px"),
        )
        self.program_button = widgets.Button(description="Program", icon="upload",
                                             button_style="primary")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="progress")
        self.progress_label = widgets.HTML("")
        self.progress_label.add_class("anatile-progress-label")
        self.program_button.on_click(self._guarded(lambda _b: self.program()))
        self.program_box = widgets.VBox([
            widgets.HBox([self.learning_rate, self.max_iter, self.tolerance]),
            widgets.HBox([self.program_button, self.progress, self.progress_label]),
        ])
        self.over_sampling = widgets.IntSlider(value=10, min=1, max=50,
                                               description="over_sampling",
                                               style={"description_width": "initial"})
        self.read_button = widgets.Button(description="Read", icon="search")
        self.read_button.on_click(self._guarded(lambda _b: self.read()))
        self.read_box = widgets.HBox([self.over_sampling, self.read_button])

    def _show_progress(self) -> None:
        with self._lock:
            if self._programming_done:  # a late timer must not rewind a finished bar
                return
            p = dict(self._progress)
        self.progress.max = max(1, int(p["max_iter"]))
        self.progress.value = min(int(p["iteration"]), self.progress.max)
        self.progress_label.value = (
            f"iteration {p['iteration']} / {p['max_iter']}, error {p['error']:.3g}"
        )

    def _show_done(self, report: Any) -> None:
        # the bar ends full either way; its colour says whether the tolerance was reached
        with self._lock:
            self._programming_done = True
        self.progress.value = self.progress.max
        self.progress.bar_style = "success" if report.converged else "warning"
        self.progress_label.value = (
            f"{'converged' if report.converged else 'not converged'} after "
            f"{report.iterations} iterations, error {report.error:.3g}"
        )

    # -------------------------------------------------------------- scales panel
    def _build_scales_panel(self) -> None:
        self.scales_readout = widgets.HTML()
        self.scales_panel = self._panel("scales", (11.0, 2.2), self._update_scales)
        ax_s, ax_b = self.scales_panel.figure.subplots(1, 2)
        n = self.tile.out_size
        x = np.arange(n)
        (self._map_line,) = ax_s.plot(x, np.ones(n), drawstyle="steps-mid", label="mapping")
        (self._learned_line,) = ax_s.plot(x, np.full(n, np.nan), drawstyle="steps-mid",
                                          label="learned out")
        ax_s.set_xlabel("output")
        ax_s.set_title("scales per output", fontsize=9)
        ax_s.legend(fontsize=7, loc="upper right")
        (self._bias_line,) = ax_b.plot(x, np.full(n, np.nan), drawstyle="steps-mid",
                                       color="#2ca02c")
        ax_b.set_xlabel("output")
        ax_b.set_title("digital bias", fontsize=9)
        self._no_bias = ax_b.text(0.5, 0.5, "no digital bias", transform=ax_b.transAxes,
                                  ha="center", va="center", color="#777")
        self._scale_axes = (ax_s, ax_b)
        few_ticks(self._scale_axes)
        tight_layout(self.scales_panel.figure)

    def _update_scales(self) -> None:
        tile = self.tile
        n = tile.out_size
        mapping = _to_numpy(tile.get_mapping_scales())
        self._map_line.set_ydata(np.broadcast_to(mapping, (n,)))
        learned_t = tile.get_learned_out_scales()
        learned = (np.full(n, np.nan) if learned_t is None
                   else np.broadcast_to(_to_numpy(learned_t), (n,)))
        self._learned_line.set_ydata(learned)
        bias = np.full(n, np.nan)
        has_bias = tile.digital_bias and tile.bias is not None
        if has_bias:
            bias = _to_numpy(tile.bias)
        self._bias_line.set_ydata(bias)
        self._no_bias.set_visible(not has_bias)
        ax_b = self._scale_axes[1]
        if has_bias:
            few_ticks([ax_b])
        else:
            ax_b.set_xticks([])
            ax_b.set_yticks([])
        for ax in self._scale_axes:
            ax.relim()
            ax.autoscale_view()
        ir = tile.input_range
        bias_mode = ("digital" if tile.digital_bias else "analog column" if tile.analog_bias
                     else "none")
        self.scales_readout.value = format_readouts({
            "mapping scales": f"{mapping.min():.4g} … {mapping.max():.4g} ({mapping.size})",
            "learned out scales": "off" if learned_t is None else
            f"{np.nanmin(learned):.4g} … {np.nanmax(learned):.4g}",
            "input range": "off" if ir is None else f"{float(ir.detach().reshape(-1)[0]):.4g}",
            "bias": bias_mode,
        })

    # -------------------------------------------------------------- weights panel
    def _build_weights_panel(self) -> None:
        self.weights_readout = widgets.HTML()
        self.weights_panel = self._panel("weights", (11.0, 3.3), self._update_weights)
        fig = self.weights_panel.figure
        ax_sc, ax_h, ax_m = fig.subplots(1, 3)
        self._scatter = ax_sc.scatter([], [], s=3, alpha=0.5, linewidths=0)
        (self._diag,) = ax_sc.plot([], [], color="k", linewidth=0.8, label="y = x")
        ax_sc.set_xlabel("target (norm. units)")
        ax_sc.set_ylabel("read (norm. units)")
        ax_sc.legend(fontsize=7, loc="upper left")
        self._hist = ax_h.stairs(np.zeros(60), np.linspace(-1, 1, 61), fill=True, alpha=0.7)
        ax_h.set_xlabel("read − target")
        ax_h.set_title("error histogram", fontsize=9)
        shape = tuple(self.target.shape)
        self._heat = ax_m.imshow(np.full(shape, np.nan), aspect="auto", cmap="magma",
                                 interpolation="nearest", vmin=0.0, vmax=1.0)
        ax_m.set_title("|error|", fontsize=9)
        ax_m.set_xlabel("input")
        ax_m.set_ylabel("output")
        fig.colorbar(self._heat, ax=ax_m, fraction=0.05)
        self._weight_axes = (ax_sc, ax_h, ax_m)
        self._read_label = "read"
        few_ticks(self._weight_axes)
        tight_layout(fig)

    def scatter_offsets(self) -> np.ndarray:
        """The (target, read) points drawn in the scatter, ``[k, 2]``."""
        return np.asarray(self._scatter.get_offsets(), dtype=np.float64)

    def scatter_indices(self) -> np.ndarray:
        """Flat indices of the weights shown in the scatter."""
        return self._scatter_idx

    def _update_weights(self) -> None:
        with self._lock:
            target = self.target.numpy()
            read = None if self.read_weight is None else self.read_weight.numpy()
            stats = dict(self.stats)
            label = self._read_label
        ax_sc, ax_h, ax_m = self._weight_axes
        idx = self._scatter_idx
        lim = float(np.abs(target).max()) if target.size else 1.0
        lim = lim if lim > 0 else 1.0
        if read is None:
            self._scatter.set_offsets(np.zeros((0, 2)))
            self.weights_readout.value = format_readouts({
                "shown": "nothing yet", WEIGHT_NRMSE.name: "–", WEIGHT_MAX_ERROR.name: "–"})
            ax_sc.set_title("press Read or Program", fontsize=9)
        else:
            flat_t, flat_r = target.reshape(-1), read.reshape(-1)
            self._scatter.set_offsets(np.c_[flat_t[idx], flat_r[idx]])
            err = read - target
            top = stats["max_error"] if np.isfinite(stats["max_error"]) else None
            counts, edges = histogram(err.reshape(-1), span=top)
            self._hist.set_data(counts, edges)
            ax_h.set_xlim(edges[0], edges[-1])
            ax_h.set_ylim(0, max(1.0, counts.max() * 1.05))
            self._heat.set_data(np.abs(err))
            self._heat.set_clim(0.0, max(top or 0.0, 1e-12))
            lim = max(lim, float(np.abs(flat_r[idx]).max()) if idx.size else lim)
            ax_sc.set_title(f"target vs {label} ({idx.size} of {flat_t.size} weights)",
                            fontsize=9)
            self.weights_readout.value = format_readouts({
                "shown": label,
                **metric_readouts(stats),
            })
        lim *= 1.05
        self._diag.set_data([-lim, lim], [-lim, lim])
        ax_sc.set_xlim(-lim, lim)
        ax_sc.set_ylim(-lim, lim)

    def _closers(self) -> list[Any]:
        return [self._progress_throttle.cancel, self.events.close,
                *(v.close for v in self.budget_box.children), *super()._closers()]
