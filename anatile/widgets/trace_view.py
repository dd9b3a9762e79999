"""TraceView: the TileInspector's panel of the selected weight over time (an inference
tile's devices' conductances and the weight, from ``anatile.analysis.weight_trace``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.ticker import LogLocator, NullLocator
from torch import Tensor

from anatile.analysis.trace import WeightTracer, weight_trace
from anatile.tiles import InferenceTile
from anatile.widgets._base import tight_layout
from anatile.widgets._live_ticks import LiveYTicks
from anatile.widgets._plots import device_style, nice_ceil, nice_range
from anatile.widgets.panel_host import PanelHost

__all__ = ["TraceView"]


def _arr(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


class TraceView:
    """The selected weight's trace: conductance of every device over time (target line,
    programmed dot, drifted line, read crosses) and the weight (read, effective, target).

    Kept artists updated in place; the time axis is fixed, the conductance axis is the
    devices' range and the weight axis is snapped to nice steps, so a click redraws at most
    the weight axis under the new data (see :class:`~anatile.widgets._figure.FigurePanel`).
    With the library's ``weight_trace`` the array-wide part of the trace is kept per tile
    state by a :class:`~anatile.analysis.trace.WeightTracer`.

    Args:
        tile: the inference tile shown.
        host: the widget the panel lives in (its ``selected`` and ``trace`` traits).
        trace_function: ``f(tile, row, col, t_steps)`` giving the trace, or None.
        t_steps: inference times of the trace (s).
    """

    def __init__(self, tile: InferenceTile, host: PanelHost,
                 trace_function: Callable[..., Any] | None,
                 t_steps: Sequence[float]) -> None:
        self.tile = tile
        self.host = host
        self.trace_function = trace_function
        self.t_steps = [float(v) for v in t_steps]
        self._tracer: WeightTracer | None = None
        self._build()

    def _build(self) -> None:
        self.panel = self.host.add_panel("trace", (11.0, 2.4), self._update)
        ax_g, ax_w = self.panel.figure.subplots(1, 2)
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
            ax.set_xlabel("t_inference (s)")
            ax.grid(alpha=0.3)
        ax_g.set_ylabel("conductance (µS)")
        ax_w.set_ylabel("weight (logical units)")
        self.axes = (ax_g, ax_w)
        # every weight gets y limits of its own (its devices and its weight fill the axes):
        # their ticks are live artists, so a click never lays the frame out again
        self.y_ticks = (LiveYTicks(self.panel, ax_g, widest_label="00.00"),
                        LiveYTicks(self.panel, ax_w, widest_label="\u22120.0000"))
        live = self.panel.add_live
        # the weight's index and ν (short: text is costly per frame)
        live(ax_g.set_title("", fontsize=8, loc="left"))
        # what the markers mean; the conductance axis' top is rounded (_conductance_range)
        ax_g.set_title("— target  ● programmed  × read", fontsize=7, loc="right",
                       color="#555")
        self.y_ticks[0].set_ylim(*self._conductance_range(np.zeros(0)))
        self.y_ticks[1].set_ylim(0.0, 1.0)
        # the weight's artists are kept and updated in place (set_data); the per-device
        # ones are built for the trace's number of devices (see _trace_device_artists)
        self._trace_devices: list[tuple[Any, Any, Any, Any]] = []
        self._trace_legend_g: Any = None
        (self._w_effective,) = ax_w.plot([], [], marker=".", label="effective (alpha · read)")
        (self._w_read,) = ax_w.plot([], [], marker="x", linestyle=":", label="read")
        self._w_target = ax_w.axhline(np.nan, color="k", linewidth=0.8, label="target")
        for artist in (self._w_effective, self._w_read, self._w_target):
            live(artist)
        self._trace_note = ax_g.text(0.5, 0.5, "", transform=ax_g.transAxes, ha="center",
                                     va="center", color="#777", fontsize=9)
        tight_layout(self.panel.figure)  # the axis labels' places leave room for ticks
        fig = self.panel.figure
        # the weight axis' title and legend belong to the figure, above that axes: a
        # click redraws the weight axis alone, and they stay as kept pixels (sticky)
        box = ax_w.get_position()
        self._trace_legend_w = self.panel.add_sticky(fig.legend(
            handles=[self._w_effective, self._w_read, self._w_target], fontsize=7,
            loc="lower right", ncol=3, bbox_to_anchor=(box.x1, box.y1 + 0.02),
            frameon=False, borderaxespad=0.0, handlelength=1.5))
        self.panel.add_sticky(fig.text(box.x0, box.y1 + 0.02, "its weight over time",
                                       fontsize=8, ha="left", va="bottom"))
        self._set_trace_visible(False)

    def _trace_device_artists(self, names: list[str]) -> list[tuple[Any, Any, Any, Any]]:
        """Per device: drifted line, target line, programmed dot, read crosses (kept while
        the number of devices stays the same)."""
        if len(self._trace_devices) == len(names):
            for (line, *_rest), name in zip(self._trace_devices, names, strict=True):
                line.set_label(name)
            return self._trace_devices
        ax_g = self.axes[0]
        panel = self.panel
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
        """From ``min(0, g_min)`` to the largest value rounded up with :func:`nice_ceil`
        (µS): the weight's devices fill most of the axis (drift and read noise stay
        visible), and weights of a similar size share the axis (and its kept frame). The
        devices' range ``1.05 · g_max`` before any trace; values below ``g_min`` (read
        noise) widen it to nice steps."""
        conv = self.tile.noise_model.g_converter
        lo = min(0.0, float(conv.g_min))
        finite = values[np.isfinite(values)]
        if not finite.size:
            return lo, float(conv.g_max) * 1.05
        if finite.min() < lo:
            return nice_range(np.concatenate([finite, [lo]]))
        return lo, nice_ceil(float(finite.max()) * 1.08)

    def _tracer_trace(self, tile: InferenceTile, row: int, col: int,
                      t_steps: Sequence[float]) -> Any:
        """``weight_trace`` through a kept :class:`~anatile.analysis.trace.WeightTracer`:
        the array-wide part is computed once per tile state, not once per click."""
        if self._tracer is None or list(self._tracer.times) != list(t_steps):
            self._tracer = WeightTracer(tile, t_steps)
        return self._tracer.trace(row, col)

    def refresh(self) -> None:
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

    def show(self, trace: Any) -> None:
        """Show a ``weight_trace`` result (see :func:`anatile.analysis.weight_trace`)."""
        self.host.trace = trace
        self.host.refresh("trace")

    def _update(self) -> None:
        ax_g, ax_w = self.axes
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
        # the weight's own limits (its ticks are live: no frame is laid out for them)
        self.y_ticks[0].set_ylim(*self._conductance_range(
            np.concatenate([g.reshape(-1) for g in g_all])))
        self.y_ticks[1].set_ylim(*nice_range(np.concatenate([w_eff, w_read, [w_target]])))
