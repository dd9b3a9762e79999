"""The InferenceTile part of the TileInspector: conductance histograms per device, the
selected weight's trace over time and a log-scale ``t_inference`` slider driving
``tile.drift_weights``."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.ticker import NullLocator
from torch import Tensor

from anatile.analysis.metrics import WEIGHT_NRMSE
from anatile.tiles import InferenceTile, TileEvent
from anatile.widgets._base import tight_layout
from anatile.widgets._plots import device_style, few_ticks, format_readouts, nice_ceil
from anatile.widgets.panel_host import PanelHost
from anatile.widgets.trace_view import TraceView

__all__ = ["TRACE_T_STEPS", "InferencePanel", "PanelHost"]

N_BINS = 50
#: slider range in log10(seconds): 1 s … 10⁹ s (≈ 32 years)
LOG_T_MIN, LOG_T_MAX = 0.0, 9.0
#: inference times (s) of the selected weight's trace: 1 s, 1 min, 1 h, 1 day, 1 month, 1 year
TRACE_T_STEPS = (1.0, 60.0, 3600.0, 86400.0, 30 * 86400.0, 365 * 86400.0)


def default_trace_function() -> Callable[..., Any] | None:
    """``anatile.analysis.weight_trace`` when the analysis package provides it, else None."""
    try:
        module = importlib.import_module("anatile.analysis")
    except ImportError:
        return None
    fn = getattr(module, "weight_trace", None)
    return fn if callable(fn) else None


class InferencePanel:
    """Conductance histograms (programmed and drifted, per device), the selected weight's
    trace and the drift slider.

    Moving the slider calls ``tile.drift_weights(t)`` on this tile (it changes the tile; the
    slider says so). Every ``"drifted"`` event, from the slider or from code elsewhere
    (``drift_analog_weights(model, t)``), updates the host's ``t_inference`` and
    ``alpha`` traits; the slider, the readouts and the weights panel (target vs
    drift-compensated weights ``alpha · W(t)``) observe those.

    Args:
        tile: the inference tile shown.
        host: the widget the panel lives in (see :class:`PanelHost`).
        trace_function: ``f(tile, row, col, t_steps)`` giving the selected weight's trace
            (default :func:`anatile.analysis.weight_trace` when available).
        t_steps: inference times of the trace.
    """

    def __init__(
        self,
        tile: InferenceTile,
        host: PanelHost,
        trace_function: Callable[..., Any] | None = None,
        t_steps: Sequence[float] = TRACE_T_STEPS,
    ) -> None:
        self.host = host
        self.tile = tile
        #: alpha and error readouts of the last drift (None before the first drift).
        self.drift_stats: dict[str, float] = {}
        self._syncing = threading.local()
        n_dev = self.tile.noise_model.g_converter.n_devices
        # as wide as the weights panel, so the host's images line up
        self.panel = host.add_panel("conductance", (11.0, 2.6), self._update)
        axes = self.panel.figure.subplots(1, n_dev, squeeze=False, sharey=True)[0]
        self._axes = list(axes)
        few_ticks(self._axes, 3)  # linear x only: the log y axis keeps its own locator
        edges = np.linspace(0.0, 1.0, N_BINS + 1)
        self._prog_hist = []
        self._drift_hist = []
        self._markers = []
        for i, ax in enumerate(self._axes):
            color = device_style(i, n_dev)["color"]
            # live: redrawn over the kept axes (the count axis is rounded up, see _update)
            self._prog_hist.append(self.panel.add_live(ax.stairs(
                np.zeros(N_BINS), edges, fill=True, alpha=0.35, color=color,
                label="programmed")))
            self._drift_hist.append(self.panel.add_live(ax.stairs(
                np.zeros(N_BINS), edges, color="k", linewidth=1.0, label="drifted")))
            prog_mark = ax.axvline(0.0, color="#d62728", linewidth=1.5, visible=False,
                                   label="_selected programmed")
            drift_mark = ax.axvline(0.0, color="#d62728", linewidth=1.5, linestyle=":",
                                    visible=False, label="_selected drifted")
            self.panel.add_overlay(prog_mark)
            self.panel.add_overlay(drift_mark)
            self._markers.append((prog_mark, drift_mark))
            ax.set_xlabel("conductance (µS)")
            ax.set_ylim(0.8, 10.0)
            ax.set_yscale("log")  # the devices parked at g_min would flatten everything else
            ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks: costly, unreadable
        self._axes[0].set_ylabel("devices")
        self.panel.add_sticky(self._axes[0].legend(fontsize=7, loc="upper right"))
        tight_layout(self.panel.figure)
        #: the selected weight's trace over time (its own panel, in ``trace_view``)
        self.trace_view = TraceView(tile, host, trace_function or default_trace_function(),
                                    t_steps)
        self.trace_panel = self.trace_view.panel
        self._trace_axes = self.trace_view.axes

        self.t_slider = widgets.FloatLogSlider(
            value=1.0, base=10, min=LOG_T_MIN, max=LOG_T_MAX, step=0.25,
            description="drift this tile to t (s)", readout_format=".3g",
            continuous_update=False, style={"description_width": "initial"},
            layout=widgets.Layout(width="520px"),
        )
        self.t_slider.add_class("anatile-t-slider")
        self.t_slider.observe(host.guarded(self._on_slider), names="value")
        self.readout = widgets.HTML(format_readouts({"t": "not drifted", "alpha": "–"}))
        self.readout.add_class("anatile-drift-readout")
        self.children: list[widgets.Widget] = [
            widgets.HTML("<b>conductances per device</b> (programmed, drifted; the selected "
                         "weight in red: solid programmed, dotted drifted)"),
            self.panel.image,
            widgets.HBox([self.t_slider, self.readout]),
            self.trace_panel.image,
        ]
        host.observe(host.guarded(self._on_state), names=["t_inference", "alpha"])
        host.invalidate("conductance", "trace")

    # ---------------------------------------------------------------- state
    @property
    def alpha(self) -> Tensor | None:
        """The tile's drift compensation alpha as last shown (the host's trait)."""
        alpha = self.host.alpha
        return alpha if isinstance(alpha, Tensor) else None

    @property
    def t_inference(self) -> float | None:
        """The tile's drift time as last shown (the host's trait)."""
        t = self.host.t_inference
        return None if t is None else float(t)

    def open_state(self) -> bool:
        """Show the tile's current state; False when it has none to show (not programmed)."""
        tile = self.tile
        if not tile.is_programmed():
            return False
        if tile.t_inference is not None:
            self._on_drifted(float(tile.t_inference), tile.alpha)
        else:
            self._on_programmed()
        return True

    def _on_state(self, change: dict[str, Any]) -> None:
        """Observer of the host's ``t_inference`` / ``alpha``: slider and readouts."""
        insp = self.host
        t = insp.t_inference
        if t is not None and t > 0 and change["name"] == "t_inference":
            self._syncing.active = True  # move the slider without drifting again
            try:
                self.t_slider.value = min(max(float(t), 10**LOG_T_MIN), 10**LOG_T_MAX)
            finally:
                self._syncing.active = False
        self._show_readout()

    def _show_readout(self) -> None:
        insp = self.host
        t = insp.t_inference
        alpha = insp.alpha
        if alpha is None:
            alpha_txt = "–"
        else:
            a = alpha.reshape(-1)
            alpha_txt = (f"{float(a[0]):.4f}" if a.numel() == 1
                         else f"{float(a.min()):.4f} … {float(a.max()):.4f}")
        items = {"t": "not drifted" if t is None else f"{t:.3g} s", "alpha": alpha_txt}
        if self.drift_stats:
            items["weight error"] = (f"{WEIGHT_NRMSE.format(self.drift_stats['weight_nrmse'])}"
                                     f" ({WEIGHT_NRMSE.symbol})")
        self.readout.value = format_readouts(items)

    # ---------------------------------------------------------------- actions
    def drift(self, t_inference: float) -> None:
        """Drift the tile to ``t_inference`` seconds (what the slider does)."""
        self.tile.drift_weights(float(t_inference))

    def _on_slider(self, change: dict[str, Any]) -> None:
        if getattr(self._syncing, "active", False):
            return
        self.drift(float(change["new"]))

    def on_tile_event(self, event: TileEvent) -> None:
        if event.kind == "programmed_noise":
            self._on_programmed()
        elif event.kind == "drifted":
            self._on_drifted(float(event.data["t_inference"]), event.data["alpha"])
        elif event.kind == "weights_set":  # the tile forgot its programming
            self.drift_stats = {}
            self.host.t_inference = None
            self.host.alpha = None
            self.host.invalidate("conductance", "trace")

    def _on_programmed(self) -> None:
        insp = self.host
        insp.show_weights(self.tile.effective_weights(), label="programmed", defer=True)
        self.drift_stats = dict(insp.stats)
        insp.alpha = self.tile.alpha.detach().to("cpu", copy=True)
        insp.t_inference = None
        self._show_readout()
        self._refresh_trace()
        insp.invalidate("conductance", "weights")

    def _on_drifted(self, t_inference: float, alpha: Tensor) -> None:
        insp = self.host
        insp.show_weights(self.tile.effective_weights(),
                          label=f"compensated (t = {t_inference:.3g} s)", defer=True)
        self.drift_stats = dict(insp.stats)
        insp.alpha = alpha.detach().to("cpu", copy=True)
        insp.t_inference = t_inference
        self._show_readout()  # a trait set to an equal value notifies nobody
        self._place_markers()
        insp.invalidate("conductance", "weights")

    # ---------------------------------------------------------------- selection
    def on_selected(self, selected: tuple[int, int] | None) -> None:
        """Place the conductance markers and compute the selected weight's trace."""
        self._place_markers()
        self._refresh_trace()

    def render_highlights(self) -> None:
        """Overlay-only redraw of the conductance panel and a redraw of the trace panel."""
        self.panel.render_overlays()
        self.host.refresh("trace")

    def _place_markers(self) -> None:
        sel = self.host.selected
        tile = self.tile
        for k, (prog_mark, drift_mark) in enumerate(self._markers):
            show = sel is not None and tile.g_programmed is not None
            prog_mark.set_visible(show)
            drift_mark.set_visible(show and tile.g_drifted is not None)
            if not show or sel is None or tile.g_programmed is None:
                continue
            row, col = sel
            prog_mark.set_xdata([float(tile.g_programmed[k, row, col])] * 2)
            if tile.g_drifted is not None:
                drift_mark.set_xdata([float(tile.g_drifted[k, row, col])] * 2)

    def selection_html(self, row: int, col: int) -> str:
        """The selected weight's stored device state: target, programmed and drifted
        conductance and ν of every device (read from the tile's buffers)."""
        tile = self.tile
        if not tile.is_programmed():
            return "<div style='color:#777'>not programmed: no conductances yet</div>"
        assert tile.g_target is not None and tile.g_programmed is not None
        assert tile.drift_nu is not None
        names = tile.noise_model.g_converter.device_names
        drifted_head = ("drifted" if tile.t_inference is None
                        else f"drifted (t = {tile.t_inference:.3g} s)")
        rows = "".join(
            f"<tr><td><b>{name}</b></td><td>{float(tile.g_target[k, row, col]):.3f}</td>"
            f"<td>{float(tile.g_programmed[k, row, col]):.3f}</td>"
            f"<td>{'–' if tile.g_drifted is None else f'{float(tile.g_drifted[k, row, col]):.3f}'}"
            f"</td><td>{float(tile.drift_nu[k, row, col]):.4f}</td></tr>"
            for k, name in enumerate(names)
        )
        return (
            "<table class='anatile-conductances' style='border-collapse:collapse'>"
            "<tr><th>device</th><th>target (µS)</th><th>programmed (µS)</th>"
            f"<th>{drifted_head} (µS)</th><th>ν</th></tr>{rows}</table>"
        )

    # ---------------------------------------------------------------- trace
    @property
    def trace_function(self) -> Callable[..., Any] | None:
        """``f(tile, row, col, t_steps)`` giving the selected weight's trace."""
        return self.trace_view.trace_function

    @trace_function.setter
    def trace_function(self, fn: Callable[..., Any] | None) -> None:
        self.trace_view.trace_function = fn

    @property
    def t_steps(self) -> list[float]:
        """Inference times of the trace (s)."""
        return self.trace_view.t_steps

    def _refresh_trace(self) -> None:
        self.trace_view.refresh()

    def show_trace(self, trace: Any) -> None:
        """Show a ``weight_trace`` result (see :func:`anatile.analysis.weight_trace`)."""
        self.trace_view.show(trace)

    # ---------------------------------------------------------------- drawing
    def _update(self) -> None:
        # the tile's documented buffers, read without the copies device_state() makes
        tile = self.tile
        conv = tile.noise_model.g_converter
        programmed, drifted_all = tile.g_programmed, tile.g_drifted
        hi = float(conv.g_max) * 1.05
        lo = min(0.0, float(conv.g_min))
        edges = np.linspace(lo, hi, N_BINS + 1)
        top = 1.0
        for i, ax in enumerate(self._axes):
            if programmed is not None and i < programmed.shape[0]:
                # bins given as a count and a range: numpy's uniform fast path (no sort)
                prog = np.histogram(_np(programmed[i]), bins=N_BINS,
                                    range=(lo, hi))[0].astype(float)
                drifted = (np.zeros(N_BINS) if drifted_all is None
                           else np.histogram(_np(drifted_all[i]), bins=N_BINS,
                                             range=(lo, hi))[0].astype(float))
                ax.set_title(conv.device_names[i], fontsize=9)
            else:
                prog = drifted = np.zeros(N_BINS)
                ax.set_title("not programmed", fontsize=9)
            self._prog_hist[i].set_data(prog, edges)
            self._drift_hist[i].set_data(drifted, edges)
            top = max(top, float(prog.max()), float(drifted.max()))
            ax.set_xlim(lo, hi)
        self._axes[0].set_ylim(0.8, nice_ceil(top * 1.5))


def _np(t: Tensor) -> np.ndarray:
    # no copy on CPU; np.histogram with a range skips NaN and out-of-range values
    return t.detach().cpu().numpy().reshape(-1)
