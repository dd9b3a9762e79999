"""ModelInspector: a per-layer table of a torch model's analog layers; a click opens the
layer's TileInspector. Model-wide actions (drift) are model-wide controls.

This module is over 400 lines since the per-tile layer view (tile arrays) was added next to
the table; the view's drawing is the next thing to move into a file of its own."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import ipywidgets as widgets
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from torch import Tensor, nn

from anatile.analysis import diagnose, layer_sensitivity, weight_nrmse
from anatile.analysis.metrics import ACCURACY_DROP, WEIGHT_NRMSE
from anatile.analysis.tiles import layer_weight_map, tile_label, tile_summaries
from anatile.tiles import InferenceTile, TileWithPeriphery
from anatile.widgets._base import (
    DEFAULT_MIN_INTERVAL_S,
    RENDER_LOCK,
    AnatileWidget,
    Throttle,
    stack_pngs,
)
from anatile.widgets.budget_view import ErrorBudgetView, findings_html
from anatile.widgets.tile_inspector import TileInspector

__all__ = ["ModelInspector"]

#: the table's columns: key, header
COLUMNS = (
    ("order", "#"),
    ("layer", "layer"),
    ("shape", "shape (out×in)"),
    ("scales", "mapping scales"),
    ("t", "drift t (s)"),
    ("alpha", "alpha"),
    ("error", f"{WEIGHT_NRMSE.label} now"),
    ("sensitivity", f"{ACCURACY_DROP.label}, layer alone"),
)
#: what the table can be sorted by (column keys)
SORT_KEYS = ("order", "error", "sensitivity", "alpha", "t", "size")


def _analog_entries(model: nn.Module) -> list[tuple[str, TileWithPeriphery, nn.Module]]:
    """``(label, tile, layer)`` of every tile of every analog layer of ``model``, in module
    order. A tile of a layer split over several tiles is labelled ``layer[row,col]`` and
    its shape is given with the layer's (``20×24 of 40×70``)."""
    entries = []
    for layer in tile_summaries(model):
        shown = layer.name or "(model)"
        split = len(layer.tiles) > 1
        for s in layer.tiles:
            tile = s.tile
            if layer.module is tile:
                kind = type(tile).__name__
            else:
                kind = f"{type(layer.module).__name__}, {type(tile).__name__}"
            name = tile_label(shown, s.position, split)  # as findings and budgets name it
            of = f" of {layer.shape[0]}×{layer.shape[1]}" if split else ""
            entries.append((f"{name} ({kind}, {tile.out_size}×{tile.in_size}{of})", tile,
                            layer.module))
    return entries


def _analog_layers(model: nn.Module) -> list[tuple[str, TileWithPeriphery]]:
    """``(label, tile)`` of every tile in ``model``, in module order (see
    :func:`_analog_entries`)."""
    return [(label, tile) for label, tile, _layer in _analog_entries(model)]


def layer_row(order: int, label: str, tile: TileWithPeriphery) -> dict[str, Any]:
    """One table row: the tile's stored state (no reads, no draws)."""
    scales = tile.get_mapping_scales().detach().reshape(-1)
    row: dict[str, Any] = {
        "order": order,
        "layer": label.split(" (")[0],
        "shape": f"{tile.out_size}×{tile.in_size}",
        "size": tile.out_size * tile.in_size,
        "scales": f"{float(scales.min()):.3g} … {float(scales.max()):.3g}",
        "t": None, "alpha": None, "error": None, "sensitivity": None,
    }
    if isinstance(tile, InferenceTile) and tile.is_programmed():
        row["t"] = tile.t_inference
        a = tile.alpha.detach().reshape(-1)
        row["alpha"] = float(a.mean())
        ref = tile.reference_weight
        if ref is not None:
            target = ref.detach()[:, : tile.in_size].to("cpu")
            row["error"] = float(weight_nrmse(tile.effective_weights(), target))
    return row


class ModelInspector(AnatileWidget):
    """A model's analog layers in a sortable table; a click on a layer opens its
    :class:`TileInspector` below (built on first opening and kept).

    A layer split over several tiles (``mapping.max_input_size``/``max_output_size``) has
    one row per tile, labelled ``layer[row,col]`` with the tile's and the layer's shape, so
    sorting by weight error or alpha ranks tiles; a click opens that tile. Above the
    inspector, the layer view shows the selected tile's whole layer (effective weights and
    weight error, from :func:`anatile.analysis.layer_weight_map`) with the tile boundaries
    drawn and the selected tile outlined.

    The table shows each layer's shape, mapping scales, drift time, alpha, weight error
    now (:data:`~anatile.analysis.metrics.WEIGHT_NRMSE` of the drift-compensated weights
    against the target, for programmed inference layers) and, given data, the accuracy
    each layer costs alone (:func:`~anatile.analysis.layer_sensitivity`); it follows the
    tiles' events. Below it: :func:`~anatile.analysis.diagnose`'s findings and, on
    request, the whole model's error budget (:class:`ErrorBudgetView`). For a model with
    inference tiles, a model-wide control drifts **every** layer
    (``drift_analog_weights(model, t)``); the layer inspectors opened from here have no
    drift slider of their own, and their Program button names the layer it re-programs.

    Args:
        model: a torch module containing analog layers (e.g. from ``convert_to_analog``).
        min_interval: passed on to the tile inspectors.
        x, y: test inputs and integer labels (optional): enable the layer sensitivity and
            the input clipping checks of the diagnosis.
        t_inference: time (s) of the layer sensitivity.
        chips: chips of the layer sensitivity.

    Raises:
        TypeError: if ``model`` is not a ``torch.nn.Module``.
        ValueError: if it has no analog tile, or only one of ``x``, ``y`` is given.

    Example:
        >>> from anatile.nn import AnalogLinear
        >>> model = nn.Sequential(AnalogLinear(8, 4, seed=0), nn.ReLU(), AnalogLinear(4, 2))
        >>> mi = ModelInspector(model)
        >>> [label.split(" ")[0] for label in mi.layer_names]
        ['0', '2']
    """

    def __init__(self, model: nn.Module, min_interval: float = DEFAULT_MIN_INTERVAL_S,
                 x: Tensor | None = None, y: Tensor | None = None,
                 t_inference: float = 86400.0, chips: int = 5) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        layers = _analog_layers(model)
        if not layers:
            raise ValueError("model: expected at least one analog layer (no analog tile found; "
                             "convert the model with anatile.nn.convert_to_analog)")
        if (x is None) != (y is None):
            raise ValueError("x, y: give both (inputs and integer labels) or neither")
        super().__init__(min_interval=min_interval)
        self.model = model
        self.x, self.y = x, y
        self.t_sensitivity = float(t_inference)
        self.chips = chips
        #: the last :func:`~anatile.analysis.layer_sensitivity` result (None before).
        self.sensitivity: Any = None
        self._sens_thread: threading.Thread | None = None
        self._min_interval = min_interval
        self._tiles = dict(layers)
        self._owners = {label: layer for label, _tile, layer in _analog_entries(model)}
        #: module path of each tile (as diagnose names it) -> its name in the table
        by_id = {id(tile): label.split(" (")[0] for label, tile in layers}
        self._tile_names = {name: by_id[id(mod)] for name, mod in model.named_modules()
                            if id(mod) in by_id}
        self._inspectors: dict[str, TileInspector] = {}
        #: labels of the analog layers, in module order
        self.layer_names = [label for label, _ in layers]
        self.layer = widgets.Dropdown(options=self.layer_names, value=self.layer_names[0],
                                      description="layer",
                                      layout=widgets.Layout(width="520px"))
        self.layer.add_class("anatile-layer-select")
        self.container = widgets.VBox()
        self.layer.observe(self._guarded(lambda change: self._show(change["new"])),
                           names="value")
        # ---- the table
        self.sort_by = widgets.Dropdown(options=list(SORT_KEYS), value="order",
                                        description="sort by",
                                        layout=widgets.Layout(width="200px"))
        self.descending = widgets.Checkbox(value=False, description="descending",
                                           indent=False, layout=widgets.Layout(width="120px"))
        self.sort_by.observe(self._guarded(lambda _c: self.refresh_table()), names="value")
        self.descending.observe(self._guarded(lambda _c: self.refresh_table()), names="value")
        self.table = widgets.GridBox(layout=widgets.Layout(
            grid_template_columns=f"repeat({len(COLUMNS)}, max-content)", grid_gap="2px 14px"))
        self.table.add_class("anatile-layer-table")
        #: the rows as shown, in table order (dicts with the COLUMNS keys)
        self.rows: list[dict[str, Any]] = []
        self._table_throttle = Throttle(self._refresh_state, min_interval, self._report)
        for _label, tile in layers:
            self._subscribe(tile.events, self._guarded(self._on_tile_event))
        # ---- the layer view: the selected tile's whole layer, tile boundaries drawn
        self._map = self._panel("layer_map", (9.0, 3.4), self._update_map)
        self._map.image.add_class("anatile-layer-map")
        # ---- diagnosis, sensitivity, error budget
        self.findings: list[Any] = []
        self.findings_area = widgets.HTML("")
        self.sensitivity_button = widgets.Button(
            description="Compute layer sensitivity", icon="calculator",
            disabled=x is None, layout=widgets.Layout(width="auto", min_width="230px"),
            tooltip="needs data: ModelInspector(model, x=..., y=...)")
        self.sensitivity_button.on_click(
            self._guarded(lambda _b: self.compute_sensitivity(background=True)))
        self.sensitivity_status = widgets.HTML(
            "" if x is not None else "<span style='color:#777'>layer sensitivity: give "
            "<code>x, y</code> (test data) to measure it</span>")
        self.budget_box = widgets.VBox([])
        self.budget_button = widgets.Button(description="Error budget of the whole model…",
                                            icon="bar-chart",
                                            layout=widgets.Layout(width="auto"))
        self.budget_button.on_click(self._guarded(lambda _b: self.show_budget()))
        # ---- model-wide drift
        children: list[widgets.Widget] = [
            widgets.HTML("<b>analog layers</b> (click a layer to open it)"),
            widgets.HBox([self.sort_by, self.descending, self.sensitivity_button,
                          self.sensitivity_status]),
            self.table,
            self.findings_area,
            widgets.HBox([self.budget_button]),
            self.budget_box,
        ]
        if any(isinstance(t, InferenceTile) for _l, t in layers):
            # it opens on the model's drift time (the slider only drifts on the button)
            self.t_model = widgets.FloatLogSlider(
                value=self._model_time() or 1.0, base=10, min=0.0, max=9.0, step=0.25,
                readout_format=".3g",
                description="t (s)", continuous_update=False,
                layout=widgets.Layout(width="420px"))
            self.drift_button = widgets.Button(
                description="Drift the whole model (drift_analog_weights)", icon="clock-o",
                button_style="warning", layout=widgets.Layout(width="auto"))
            self.drift_button.on_click(self._guarded(lambda _b: self.drift(self.t_model.value)))
            children.append(widgets.HBox([self.t_model, self.drift_button]))
        children += [self.layer, self._map.image, self.container, self._error_label,
                     self.log_area]
        self.children = children
        self.refresh_table()
        self._guarded(self.refresh_findings)()
        self._guarded(self._show)(self.layer.value)

    # ------------------------------------------------------------------ table
    def refresh_table(self) -> None:
        """Rebuild the table from the tiles' current state, sorted as the controls say."""
        rows = [layer_row(i, label, tile)
                for i, (label, tile) in enumerate(self._tiles.items())]
        if self.sensitivity is not None:
            drops = dict(zip(self.sensitivity.layers, self.sensitivity.mean.tolist(),
                             strict=True))
            for row in rows:
                row["sensitivity"] = drops.get(row["layer"])
        key = self.sort_by.value

        def sort_key(row: dict[str, Any]) -> tuple[bool, float]:
            value = row["size" if key == "size" else key]
            missing = value is None
            return (missing, 0.0 if missing else float(value))

        rows.sort(key=sort_key, reverse=False)
        if self.descending.value:
            present = [r for r in rows if r[key if key != "size" else "size"] is not None]
            missing = [r for r in rows if r[key if key != "size" else "size"] is None]
            rows = present[::-1] + missing
        self.rows = rows
        # headers wrap (the metric labels are long): the table fits a notebook's width
        cells: list[widgets.Widget] = [
            widgets.HTML(f"<div style='white-space:normal;max-width:9em;line-height:1.25'>"
                         f"<b>{head}</b></div>") for _k, head in COLUMNS]
        for row in rows:
            label = self.layer_names[row["order"]]
            button = widgets.Button(description=row["layer"], tooltip=label,
                                    layout=widgets.Layout(width="auto"))
            button.add_class("anatile-layer-button")
            button.on_click(self._guarded(lambda _b, label=label: self.open_layer(label)))
            for key_, _head in COLUMNS:
                if key_ == "layer":
                    cells.append(button)
                else:
                    cells.append(widgets.HTML(_fmt(key_, row[key_])))
        self.table.children = cells

    def _refresh_state(self) -> None:
        """After a tile event: the table, the diagnosis and the model's time follow."""
        self.refresh_table()
        self.refresh_findings()
        t = self._model_time()
        if t is not None and hasattr(self, "t_model"):
            self.t_model.value = t

    def _model_time(self) -> float | None:
        """The latest drift time of the model's inference tiles (None when none drifted)."""
        times = [t.t_inference for t in self._tiles.values()
                 if isinstance(t, InferenceTile) and t.t_inference is not None]
        return max(times) if times else None

    def refresh_findings(self) -> list[Any]:
        """Run :func:`~anatile.analysis.diagnose` on the model and list its findings."""
        self.findings = list(diagnose(self.model, self.x))
        # diagnose names tiles as the table does (0[1,2]); a bare tile is "(model)" here
        shown = [replace(f, where=self._tile_names.get(f.path, f.where))
                 for f in self.findings]
        self.findings_area.value = findings_html(shown)
        return self.findings

    def compute_sensitivity(self, background: bool = False) -> Any:
        """:func:`~anatile.analysis.layer_sensitivity` of every layer at the inspector's
        time over ``chips`` chips (on a private copy: the model is not changed); the table
        gains each layer's mean accuracy drop.

        Raises:
            ValueError: without data (``x``, ``y``).
            RuntimeError: while it is already being computed.
        """
        if self.x is None or self.y is None:
            raise ValueError("x, y: the layer sensitivity needs data "
                             "(ModelInspector(model, x=..., y=...))")
        if self._sens_thread is not None and self._sens_thread.is_alive():
            raise RuntimeError("the layer sensitivity is already being computed")
        self.sensitivity_button.disabled = True
        self.sensitivity_status.value = (f"simulating {self.chips} chips at "
                                         f"t = {self.t_sensitivity:.3g} s…")
        if background:
            self._sens_thread = threading.Thread(target=self._guarded(self._sensitivity),
                                                 name="anatile-sensitivity", daemon=True)
            self._sens_thread.start()
            return None
        return self._sensitivity()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background sensitivity computation ends; False on timeout."""
        if self._sens_thread is None:
            return True
        self._sens_thread.join(timeout)
        return not self._sens_thread.is_alive()

    def _sensitivity(self) -> Any:
        assert self.x is not None and self.y is not None
        try:
            self.sensitivity = layer_sensitivity(self.model, self.x, self.y,
                                                 self.t_sensitivity, chips=self.chips)
            self.sensitivity_status.value = (
                f"accuracy with every layer ideal {100 * self.sensitivity.ideal:.1f} %; "
                f"t = {self.t_sensitivity:.3g} s, {self.chips} chips")
            self.refresh_table()
            return self.sensitivity
        finally:
            self.sensitivity_button.disabled = False

    def show_budget(self, compute: bool = True) -> ErrorBudgetView:
        """Open the whole model's :class:`ErrorBudgetView` below the table (computed in the
        background unless ``compute`` is False); returns it."""
        if not self.budget_box.children:
            view = ErrorBudgetView(self.model, inputs=self.x)
            self.budget_box.children = [view]
            if compute:
                view.compute(background=True)
        view = self.budget_box.children[0]
        assert isinstance(view, ErrorBudgetView)
        return view

    def _on_tile_event(self, event: Any) -> None:
        if event.kind in ("drifted", "programmed_noise", "weights_set", "scales_changed",
                          "programmed"):
            self._table_throttle.request()
            self._invalidate("layer_map")

    # ------------------------------------------------------------------ actions
    def open_layer(self, label: str) -> TileInspector:
        """Open the layer ``label`` (one of :attr:`layer_names`) below the table."""
        if label not in self._tiles:
            raise ValueError(f"label: expected one of {self.layer_names}, got {label!r}")
        self.layer.value = label
        return self.inspector

    def drift(self, t_inference: float) -> None:
        """Drift every inference layer of the model to ``t_inference`` seconds
        (:func:`anatile.nn.drift_analog_weights`; it changes the model)."""
        from anatile.nn import drift_analog_weights

        drift_analog_weights(self.model, float(t_inference))
        self._table_throttle.flush()

    @property
    def inspector(self) -> TileInspector:
        """The inspector of the selected layer."""
        return self._inspectors[self.layer.value]

    def _show(self, label: str) -> None:
        if label not in self._inspectors:
            insp = TileInspector(self._tiles[label], self._min_interval)
            layer = label.split(" (")[0]
            insp.program_button.description = f"Re-program layer {layer} (changes your model)"
            if insp.extra is not None:  # the model-wide control drifts; no per-layer slider
                insp.extra.t_slider.layout.display = "none"
            self._inspectors[label] = insp
        self.container.children = [self._inspectors[label]]
        self.refresh("layer_map")

    def _update_map(self) -> None:
        """The selected tile's layer: its effective weights and weight error with the tile
        boundaries (green) and the selected tile outlined (amber); from
        :func:`anatile.analysis.layer_weight_map`."""
        label = self.layer.value
        tile, layer = self._tiles[label], self._owners[label]
        wmap = layer_weight_map(layer)
        fig = self._map.figure
        fig.clear()
        ax_w, ax_e = fig.subplots(1, 2)
        w = wmap.weight.numpy()
        lim = float(abs(w).max()) or 1.0
        im_w = ax_w.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto",
                           interpolation="nearest")
        im_e = ax_e.imshow(wmap.error.numpy(), cmap="magma", vmin=0.0, aspect="auto",
                           interpolation="nearest")
        fig.colorbar(im_w, ax=ax_w, label="effective weight")
        fig.colorbar(im_e, ax=ax_e, label="|W_eff − W_ref| (% of max|W|)")
        placement = next(p for p in tile_summaries(layer)[0].tiles if p.tile is tile).placement
        for ax in (ax_w, ax_e):
            for r in wmap.row_bounds:
                ax.axhline(r - 0.5, color="#2ca02c", linewidth=1.2)
            for c in wmap.col_bounds:
                ax.axvline(c - 0.5, color="#2ca02c", linewidth=1.2)
            ax.add_patch(Rectangle((placement.in_slice.start - 0.5,
                                    placement.out_slice.start - 0.5),
                                   placement.shape[1], placement.shape[0], fill=False,
                                   edgecolor="#ffbf00", linewidth=2.0))
            ax.set_xlabel("input")
            ax.set_ylabel("output")
            ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))  # weight indices
            ax.yaxis.set_major_locator(MaxNLocator(6, integer=True))
        rows = len(wmap.row_bounds) + 1
        cols = len(wmap.col_bounds) + 1
        ax_w.set_title(f"layer {label.split(' (')[0].split('[')[0]}: {rows}×{cols} tile(s), "
                       f"tile {placement.position} outlined", fontsize=9)
        ax_e.set_title("weight error", fontsize=9)
        fig.subplots_adjust(left=0.07, right=0.97, bottom=0.14, top=0.9, wspace=0.3)

    def export_data(self, directory: Any, stem: str | None = None) -> list[Any]:
        """The layer table as CSV."""
        import csv
        from pathlib import Path

        path = Path(directory) / f"{stem or type(self).__name__}_layers.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([k for k, _h in COLUMNS])
            for row in self.rows:
                writer.writerow(["" if row[k] is None else row[k] for k, _h in COLUMNS])
        return [path]

    def _repr_png_(self) -> bytes:
        """The selected layer's inspector as one PNG."""
        # RENDER_LOCK first, as a throttled draw takes it (then the panel's lock): the
        # other order deadlocks against a redraw running on the timer thread
        with RENDER_LOCK:
            return stack_pngs([self._map.png(), self.inspector._repr_png_()])

    def _closers(self) -> list[Any]:
        return [self._table_throttle.cancel, *(v.close for v in self.budget_box.children),
                *(insp.close for insp in self._inspectors.values()), *super()._closers()]


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "<span style='color:#999'>–</span>"
    cls = f"anatile-cell-{key}"
    if key == "alpha":
        return f"<span class='{cls}'>{value:.4f}</span>"
    if key in ("error", "sensitivity"):  # fractions shown in % / percentage points
        return f"<span class='{cls}'>{100 * value:.2f}</span>"
    if key == "t":
        return f"<span class='{cls}'>{value:.3g}</span>"
    return f"<span class='{cls}'>{value}</span>"
