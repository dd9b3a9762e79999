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
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator
from torch import Tensor

from anatile.analysis.metrics import WEIGHT_NRMSE
from anatile.analysis.trace import WeightTracer, weight_trace
from anatile.tiles import InferenceTile, TileEvent
from anatile.widgets._base import tight_layout
from anatile.widgets._plots import device_style, few_ticks, format_readouts, nice_ceil, nice_range
from anatile.widgets.panel_host import PanelHost

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


def _arr(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


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
        self.trace_function = trace_function or default_trace_function()
        self._tracer: WeightTracer | None = None
        self.t_steps = [float(t) for t in t_steps]
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
        self._build_trace_panel()

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
    def _build_trace_panel(self) -> None:
        self.trace_panel = self.host.add_panel("trace", (11.0, 2.4), self._update_trace)
        ax_g, ax_w = self.trace_panel.figure.subplots(1, 2)
        t = np.asarray(self.t_steps, dtype=np.float64)
        positive = t[t > 0]
        lo, hi = ((positive.min() / 1.5, positive.max() * 1.5) if positive.size
                  else (0.5, 2.0))
        for ax in (ax_g, ax_w):
            ax.set_xscale("log")
            ax.set_xlim(lo, hi)  # the trace's times are fixed: so are the x axes
            # one labelled tick per decade at most 5 times, no minor ticks (their layout
            # was most of a trace redraw)
            ax.xaxis.set_major_locator(LogLocator(base=10.0, numticks=6))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.set_xlabel("t_inference (s)")
            ax.grid(alpha=0.3)
        ax_g.set_ylabel("conductance (µS)")
        ax_w.set_ylabel("weight (logical units)")
        self._trace_axes = (ax_g, ax_w)
        live = self.trace_panel.add_live
        # the weight's index and ν (short: text is costly per frame)
        live(ax_g.set_title("", fontsize=8, loc="left"))
        # what the markers mean, and the conductance axis: fixed, so a click redraws the
        # weight axis only (the device range, as the conductance histograms above)
        ax_g.set_title("— target  ● programmed  × read", fontsize=7, loc="right",
                       color="#555")
        ax_g.set_ylim(*self._conductance_range(np.zeros(0)))
        ax_w.set_title("its weight over time", fontsize=8, loc="left")
        # the weight's artists are kept and updated in place (set_data); the per-device
        # ones are built for the trace's number of devices (see _trace_device_artists)
        self._trace_devices: list[tuple[Any, Any, Any, Any]] = []
        self._trace_legend_g: Any = None
        (self._w_effective,) = ax_w.plot([], [], marker=".", label="effective (alpha · read)")
        (self._w_read,) = ax_w.plot([], [], marker="x", linestyle=":", label="read")
        self._w_target = ax_w.axhline(np.nan, color="k", linewidth=0.8, label="target")
        for artist in (self._w_effective, self._w_read, self._w_target):
            live(artist)
        # above the axes, beside the title: never over the data, no "best" placement
        # search (it was a third of a redraw of this axes)
        self._trace_legend_w = ax_w.legend(fontsize=7, loc="lower right", ncol=3,
                                           bbox_to_anchor=(1.0, 1.0), frameon=False,
                                           borderaxespad=0.0, handlelength=1.5)
        self._trace_note = ax_g.text(0.5, 0.5, "", transform=ax_g.transAxes, ha="center",
                                     va="center", color="#777", fontsize=9)
        tight_layout(self.trace_panel.figure)
        # room for a weight's tick labels (-0.15), wider than the empty panel's: the right
        # panel's label must not run into the left panel (no re-layout per click: latency)
        fig = self.trace_panel.figure
        fig.subplots_adjust(wspace=fig.subplotpars.wspace + 0.06)
        self._set_trace_visible(False)

    def _trace_device_artists(self, names: list[str]) -> list[tuple[Any, Any, Any, Any]]:
        """Per device: drifted line, target line, programmed dot, read crosses (kept while
        the number of devices stays the same)."""
        if len(self._trace_devices) == len(names):
            for (line, *_rest), name in zip(self._trace_devices, names, strict=True):
                line.set_label(name)
            return self._trace_devices
        ax_g = self._trace_axes[0]
        panel = self.trace_panel
        for artists in self._trace_devices:
            for artist in artists:
                panel.live.remove(artist)
                artist.remove()
        if self._trace_legend_g is not None:
            panel.sticky.remove(self._trace_legend_g)
            self._trace_legend_g.remove()
        n_dev = len(names)
        self._trace_devices = []
        for k, name in enumerate(names):
            style = device_style(k, n_dev)
            (drifted,) = ax_g.plot([], [], marker=".", label=name, **style)
            target = ax_g.axhline(np.nan, color=style["color"], linewidth=0.8, alpha=0.5)
            (programmed,) = ax_g.plot([], [], marker="o", color="k", markersize=4,
                                      linestyle="none")
            (read,) = ax_g.plot([], [], marker="x", linestyle="none", color=style["color"],
                                markersize=4)
            for artist in (drifted, target, programmed, read):
                panel.add_live(artist)
            self._trace_devices.append((drifted, target, programmed, read))
        self._trace_legend_g = panel.add_sticky(ax_g.legend(fontsize=7, loc="upper right",
                                                            ncol=2))
        return self._trace_devices

    def _set_trace_visible(self, visible: bool) -> None:
        for artists in self._trace_devices:
            for artist in artists:
                artist.set_visible(visible)
        for artist in (self._w_effective, self._w_read, self._w_target,
                       self._trace_legend_w, self._trace_legend_g):
            if artist is not None:
                artist.set_visible(visible)

    def _conductance_range(self, values: np.ndarray) -> tuple[float, float]:
        """The devices' range ``[min(0, g_min), 1.05 · g_max]`` (µS), widened to nice steps
        only when a value (read noise) falls outside it."""
        conv = self.tile.noise_model.g_converter
        lo, hi = min(0.0, float(conv.g_min)), float(conv.g_max) * 1.05
        finite = values[np.isfinite(values)]
        if finite.size and (finite.min() < lo or finite.max() > hi):
            return nice_range(np.concatenate([finite, [lo, hi]]))
        return lo, hi

    def _tracer_trace(self, tile: InferenceTile, row: int, col: int,
                      t_steps: Sequence[float]) -> Any:
        """``weight_trace`` through a kept :class:`~anatile.analysis.trace.WeightTracer`:
        the array-wide part is computed once per tile state, not once per click."""
        if self._tracer is None or list(self._tracer.times) != list(t_steps):
            self._tracer = WeightTracer(tile, t_steps)
        return self._tracer.trace(row, col)

    def _refresh_trace(self) -> None:
        """Compute the selected weight's trace (library call) and mark the panel stale."""
        sel = self.host.selected
        trace = None
        fn = self.trace_function
        if sel is not None and fn is not None and self.tile.is_programmed():
            if fn is weight_trace:
                fn = self._tracer_trace
            trace = fn(self.tile, sel[0], sel[1], self.t_steps)
        self.host.trace = trace
        self.host.invalidate("trace")

    def show_trace(self, trace: Any) -> None:
        """Show a ``weight_trace`` result (see :func:`anatile.analysis.weight_trace`)."""
        self.host.trace = trace
        self.host.refresh("trace")

    def _update_trace(self) -> None:
        ax_g, ax_w = self._trace_axes
        trace = self.host.trace
        sel = self.host.selected
        if trace is None:
            if sel is None:
                note = "select a weight to see its conductances over time"
            elif not self.tile.is_programmed():
                note = "program the tile to see the selected weight over time"
            elif self.trace_function is None:
                note = "no trace function (anatile.analysis.weight_trace) available"
            else:
                note = ""
            self._trace_note.set_text(note)
            ax_g.set_title("", fontsize=8, loc="left")
            self._set_trace_visible(False)
            return
        self._trace_note.set_text("")
        t = _arr(trace.t_steps)
        g_drift = _arr(trace.g_drifted).reshape(t.size, -1)
        g_target = _arr(trace.g_target).reshape(-1)
        g_prog = _arr(trace.g_programmed).reshape(-1)
        g_read = getattr(trace, "g_read", None)
        g_read = None if g_read is None else _arr(g_read).reshape(t.size, -1)
        names = list(trace.device_names)
        artists = self._trace_device_artists(names)
        self._set_trace_visible(True)
        for k, (drifted, target, programmed, read) in enumerate(artists):
            drifted.set_data(t, g_drift[:, k])
            target.set_ydata([g_target[k]] * 2)
            programmed.set_data([t[0]], [g_prog[k]])
            read.set_data((t, g_read[:, k]) if g_read is not None else ([], []))
        w_eff, w_read = _arr(trace.weight_effective), _arr(trace.weight_read)
        w_target = float(trace.weight_target)
        self._w_effective.set_data(t, w_eff)
        self._w_read.set_data(t, w_read)
        self._w_target.set_ydata([w_target] * 2)
        nu = ", ".join(f"{v:.3f}" for v in _arr(trace.nu).reshape(-1))
        ax_g.set_title(f"weight ({trace.row}, {trace.col}), ν = [{nu}]", fontsize=8,
                       loc="left")
        g_all = [g_drift, g_target, g_prog] + ([] if g_read is None else [g_read])
        ax_g.set_ylim(*self._conductance_range(
            np.concatenate([g.reshape(-1) for g in g_all])))
        # limits snapped to nice steps: nearby weights share the axis (and its kept frame)
        ax_w.set_ylim(*nice_range(np.concatenate([w_eff, w_read, [w_target]])))

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
