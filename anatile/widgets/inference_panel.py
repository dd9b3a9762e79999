"""The InferenceTile part of the TileInspector: conductance histograms per device and a
log-scale ``t_inference`` slider driving ``tile.drift_weights``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import ipywidgets as widgets
import numpy as np
from matplotlib.ticker import NullLocator
from torch import Tensor

from anatile.tiles import InferenceTile, TileEvent
from anatile.widgets._base import F, FigurePanel
from anatile.widgets._plots import device_style, few_ticks, format_readouts

__all__ = ["InferencePanel", "PanelHost"]

N_BINS = 50
#: slider range in log10(seconds): 1 s … 10⁹ s (≈ 32 years)
LOG_T_MIN, LOG_T_MAX = 0.0, 9.0


class PanelHost(Protocol):
    """What the widget hosting an :class:`InferencePanel` provides (the TileInspector)."""

    #: RMSE, max |error| and relative error of the last weights shown.
    stats: dict[str, float]

    def add_panel(
        self, name: str, figsize: tuple[float, float], update: Callable[[], None]
    ) -> FigurePanel:
        """A figure panel redrawn by the host (``update`` runs before each redraw)."""
        ...

    def guarded(self, fn: F) -> F:
        """``fn`` wrapped so that its exceptions land in the host's log area."""
        ...

    def invalidate(self, *names: str) -> None:
        """Ask for a throttled redraw of the named panels."""
        ...

    def show_weights(self, weight: Tensor, label: str = "read", defer: bool = False) -> None:
        """Compare ``weight`` with the host's target weights and redraw."""
        ...


class InferencePanel:
    """Conductance histograms (programmed and drifted, per device) and the drift slider.

    Moving the slider calls ``tile.drift_weights(t)``; the ``"drifted"`` event updates the
    alpha readout, the weight error of the drift-compensated weights against the target and
    the host's weights panel (target vs compensated weights at ``t``).

    Args:
        tile: the inference tile shown.
        host: the widget the panel lives in (see :class:`PanelHost`).
    """

    def __init__(self, tile: InferenceTile, host: PanelHost) -> None:
        self.host = host
        self.tile = tile
        #: alpha and error readouts of the last drift (None before the first drift).
        self.alpha: Tensor | None = None
        self.t_inference: float | None = None
        self.drift_stats: dict[str, float] = {}
        n_dev = self.tile.noise_model.g_converter.n_devices
        # as wide as the weights panel, so the inspector's images line up
        self.panel = host.add_panel("conductance", (11.0, 2.6), self._update)
        axes = self.panel.figure.subplots(1, n_dev, squeeze=False, sharey=True)[0]
        self._axes = list(axes)
        few_ticks(self._axes, 3)  # linear x only: the log y axis keeps its own locator
        edges = np.linspace(0.0, 1.0, N_BINS + 1)
        self._prog_hist = []
        self._drift_hist = []
        for i, ax in enumerate(self._axes):
            color = device_style(i, n_dev)["color"]
            self._prog_hist.append(ax.stairs(np.zeros(N_BINS), edges, fill=True, alpha=0.35,
                                             color=color, label="programmed"))
            self._drift_hist.append(ax.stairs(np.zeros(N_BINS), edges, color="k",
                                              linewidth=1.0, label="drifted"))
            ax.set_xlabel("conductance (µS)")
            ax.set_ylim(0.8, 10.0)
            ax.set_yscale("log")  # the devices parked at g_min would flatten everything else
            ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks: costly, unreadable
        self._axes[0].set_ylabel("devices")
        self._axes[0].legend(fontsize=7, loc="upper right")
        self.panel.figure.tight_layout()

        self.t_slider = widgets.FloatLogSlider(
            value=1.0, base=10, min=LOG_T_MIN, max=LOG_T_MAX, step=0.25,
            description="t_inference (s)", readout_format=".3g", continuous_update=False,
            style={"description_width": "initial"}, layout=widgets.Layout(width="480px"),
        )
        self.t_slider.add_class("anatile-t-slider")
        self.t_slider.observe(host.guarded(self._on_slider), names="value")
        self.readout = widgets.HTML(format_readouts({"alpha": "–", "weight error": "–"}))
        self.children: list[widgets.Widget] = [
            widgets.HTML("<b>conductances per device</b> (programmed, drifted)"),
            self.panel.image,
            widgets.HBox([self.t_slider, self.readout]),
        ]
        host.invalidate("conductance")

    # ---------------------------------------------------------------- actions
    def drift(self, t_inference: float) -> None:
        """Drift the tile to ``t_inference`` seconds (what the slider does)."""
        self.tile.drift_weights(float(t_inference))

    def _on_slider(self, change: dict[str, Any]) -> None:
        self.drift(float(change["new"]))

    def on_tile_event(self, event: TileEvent) -> None:
        if event.kind == "programmed_noise":
            self.host.invalidate("conductance")
        elif event.kind == "drifted":
            self._on_drifted(float(event.data["t_inference"]), event.data["alpha"])

    def _on_drifted(self, t_inference: float, alpha: Tensor) -> None:
        host = self.host
        effective = self.tile.effective_weights()
        self.alpha = alpha.detach().to("cpu", copy=True)
        self.t_inference = t_inference
        host.show_weights(effective, label=f"compensated (t = {t_inference:.3g} s)",
                          defer=True)
        self.drift_stats = dict(host.stats)
        a = self.alpha.reshape(-1)
        alpha_txt = (f"{float(a[0]):.4f}" if a.numel() == 1
                     else f"{float(a.min()):.4f} … {float(a.max()):.4f}")
        self.readout.value = format_readouts({
            "t": f"{t_inference:.3g} s",
            "alpha": alpha_txt,
            "weight error": f"{self.drift_stats['relative_error']:.3%}",
            "RMSE": f"{self.drift_stats['rmse']:.4g}",
        })
        host.invalidate("conductance", "weights")

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
        self._axes[0].set_ylim(0.8, top * 1.5)


def _np(t: Tensor) -> np.ndarray:
    # no copy on CPU; np.histogram with a range skips NaN and out-of-range values
    return t.detach().cpu().numpy().reshape(-1)
