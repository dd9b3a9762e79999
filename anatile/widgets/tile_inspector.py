"""TileInspector: scales, target vs read weights, programming and reading of one tile.

The inspector owns the state (target, last read, selection, drift time) and the controls;
its panels draw it: the scales panel (``scales_view``), the weights panel with the pointer
(``weights_view``) and, for an inference tile, ``inference_panel``; the program and read
controls are in ``tile_controls``.
"""

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
from anatile.tiles import ClosedLoopProgramming, InferenceTile, TileEvent, TileWithPeriphery
from anatile.widgets._base import (
    DEFAULT_MIN_INTERVAL_S,
    AnatileWidget,
    F,
    FigurePanel,
)
from anatile.widgets._plots import error_summary, format_readouts
from anatile.widgets.budget_view import ErrorBudgetView
from anatile.widgets.inference_panel import InferencePanel
from anatile.widgets.scales_view import ScalesView
from anatile.widgets.tile_controls import TileControls
from anatile.widgets.weights_view import MAX_SCATTER_POINTS, WeightsState, WeightsView

__all__ = ["TileInspector"]


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
    ``tile.drift_weights(t)`` (see ``anatile.widgets.inference_panel``). It opens on the
    tile's current drift time and alpha and follows drifts made elsewhere
    (``drift_analog_weights``).

    The widget subscribes to ``tile.events``; redraws are throttled (``min_interval``) and
    happen off the emitting thread. Callback errors show in ``log_area``.

    Args:
        tile: a :class:`~anatile.tiles.TileWithPeriphery` (or subclass).
        min_interval: minimum seconds between two redraws.
        max_scatter_points: size of the scatter subsample.

    Raises:
        TypeError: if ``tile`` is not a ``TileWithPeriphery``.

    Example:
        >>> from anatile.tiles import TileWithPeriphery
        >>> tile = TileWithPeriphery(64, 64, seed=0)
        >>> tile.set_weights(torch.randn(64, 64) * 0.1)
        >>> inspector = TileInspector(tile)
        >>> inspector.select(3, 5)
        >>> inspector.selected
        (3, 5)
        >>> sorted(inspector.stats)
        ['max_error', 'relative_error', 'rmse', 'weight_max_error', 'weight_nrmse']
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
        self.tile = tile
        self.target: Tensor = self._current_target()
        #: weights of the last read from this widget (normalized units), or None.
        self.read_weight: Tensor | None = None
        #: RMSE, max |error| and relative error of the last read vs the target.
        self.stats: dict[str, float] = {}
        #: the selected weight's ``weight_trace`` result (inference tiles), or None.
        self.trace: Any = None
        self._lock = threading.Lock()
        self._read_label = "read"

        self.extra: InferencePanel | None = None  # for an InferenceTile
        #: the scales panel and the weights panel (with the pointer), each in its module.
        self.scales_view = ScalesView(tile, self.add_panel)
        self.weights_view = WeightsView(self, (tile.out_size, tile.in_size),
                                        max_scatter_points)
        self.scales_panel, self.scales_readout = self.scales_view.panel, self.scales_view.readout
        view = self.weights_view
        self.weights_panel, self.weights_readout = view.panel, view.readout
        self.hover_readout, self.zoom_box = view.hover_readout, view.zoom_box
        self.reset_zoom_button, self.events = view.reset_zoom_button, view.events
        self.selection_readout = widgets.HTML()
        self.selection_readout.add_class("anatile-selection")
        self.controls = TileControls(self._guarded(lambda _b: self.program()),
                                     self._guarded(lambda _b: self.read()),
                                     min_interval, self._report)
        c = self.controls  # its widgets, also as attributes of the inspector
        self.learning_rate, self.max_iter, self.tolerance = c.learning_rate, c.max_iter, c.tolerance
        self.program_button, self.progress, self.progress_label = (
            c.program_button, c.progress, c.progress_label)
        self.program_box, self.over_sampling, self.read_button, self.read_box = (
            c.program_box, c.over_sampling, c.read_button, c.read_box)
        self._show_selection_info()
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
            self.controls.on_progress(event.data)
        elif kind == "programmed":
            self.controls.on_programmed(event.data["report"])
        elif kind == "weights_set":
            self.target = self._current_target()  # same shape: the subsample stays
            self._invalidate("weights", "scales")
        elif kind in ("scales_changed", "input_range_changed"):
            self._invalidate("scales")
        elif kind == "programmed_noise":
            self.controls.show_noise_programmed()
        if self.extra is not None:
            self.extra.on_tile_event(event)

    def _attach_inference_panel(self) -> None:
        if isinstance(self.tile, InferenceTile):
            self.extra = InferencePanel(self.tile, self)
        if not self._closed_loop():  # e.g. programmed through a noise model: no controls
            self.controls.hide_closed_loop()
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
        """``fn`` wrapped so that its exceptions land in ``log_area``."""
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
        self.weights_view.place_markers(self.selected, self._selected_values())

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
            weight: ``[out_size, in_size]`` weights to compare with ``target``.
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
        self.controls.show_started()
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
        return self.controls.closed_loop_options() if self._closed_loop() else {}

    # -------------------------------------------------------------- weights panel
    def weights_state(self) -> WeightsState:
        """Target, last read weights, their statistics and the read's label (one snapshot,
        for the weights panel; see :class:`~anatile.widgets.weights_view.WeightsHost`)."""
        with self._lock:
            return WeightsState(self.target, self.read_weight, dict(self.stats),
                                self._read_label)

    def scatter_offsets(self) -> np.ndarray:
        """The (target, read) points drawn in the scatter, ``[k, 2]``."""
        return self.weights_view.scatter_offsets()

    def scatter_indices(self) -> np.ndarray:
        """Flat indices of the weights shown in the scatter."""
        return self.weights_view.scatter_idx

    def zoom(self, rows: tuple[int, int] | None = None,
             cols: tuple[int, int] | None = None) -> None:
        """Show rows ``rows[0] … rows[1]`` and columns ``cols[0] … cols[1]`` (inclusive) of the
        heatmap; ``zoom()`` shows the whole matrix.

        Raises:
            ValueError: if a range is not two indices ``first <= last`` inside the tile.
        """
        self.weights_view.zoom(rows, cols)

    def _closers(self) -> list[Any]:
        return [self.controls.close, self.weights_view.close,
                *(v.close for v in self.budget_box.children), *super()._closers()]
