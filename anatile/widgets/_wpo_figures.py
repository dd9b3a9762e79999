"""The WPOMonitor's two figures: the TNMSE per generation and the best strategy's g(w).

Both are drawn on every frame of a run (about once a second), so they are built to keep
their kept frame (axes, tick labels, titles, legends: see
:class:`~anatile.widgets._figure.FigurePanel`) for the whole run: a new set of axes limits
redraws the axes' text, which costs about ten frames of live data. The loss axes' limits
only widen during a run and the g(w) axes are fixed; the numbers that change per
generation are in the monitor's status line, not drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.patches import Polygon
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from anatile.analysis.metrics import TNMSE
from anatile.inference import CustomPairConductanceConverter
from anatile.widgets._base import RENDER_LOCK, FigurePanel, tight_layout
from anatile.widgets._plots import (
    axis_label,
    conductance_curves,
    device_style,
    few_ticks,
    nice_ceil,
)

__all__ = ["DATA_HEIGHT", "G_TITLE", "LOG_STEPS", "X_HORIZON_S", "LossFigure", "StrategyFigure",
           "target_label"]

#: during a run the generation axis reaches as far as the run gets in this many seconds
#: at its current pace (at most ``maxiter``), so it is widened about that rarely.
X_HORIZON_S = 30.0
#: limits of the TNMSE axis are multiples of these in each decade (tick positions of the
#: log axis: both ends carry a label).
LOG_STEPS = (1.0, 2.0, 5.0, 10.0)
G_TITLE = "g(w) of the best strategy so far"
#: the best TNMSE, baseline and target stay in this lower part of the (log) TNMSE axis;
#: the legend sits in the head room above (the early population band runs through it).
DATA_HEIGHT = 0.6


def target_label(early_stop: bool) -> str:
    """The legend entry of the target line: whether reaching it stops the run."""
    return "target (early stop)" if early_stop else "target (early stop off)"


class LossFigure:
    """TNMSE per generation: the best strategy's, the population's 10–90 % band, the
    baseline and the target, on a log axis whose limits change rarely.

    Args:
        panel: the (empty) figure panel to build on.
    """

    def __init__(self, panel: FigurePanel) -> None:
        self.panel = panel
        ax = self.ax = panel.figure.subplots()
        ax.set_xlabel("generation")
        ax.set_ylabel(axis_label(TNMSE), fontsize=8)
        ax.set_yscale("log")  # early populations span orders of magnitude
        ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        ax.grid(alpha=0.3)
        self.band_patch = panel.add_live(Polygon(
            np.zeros((0, 2)), closed=True, alpha=0.25, linewidth=0, color="#1f77b4",
            label="population 10–90 %"))
        ax.add_patch(self.band_patch)
        self.best_line = panel.add_live(ax.plot([], [], color="#1f77b4", marker=".",
                                                label="best")[0])
        # live too: a new baseline leaves the kept frame as it is (only limits change it)
        self.baseline_line = panel.add_live(ax.axhline(np.nan, color="#7f7f7f", ls="--",
                                                       label="baseline"))
        self.target_line = panel.add_live(ax.axhline(np.nan, color="#2ca02c", linestyle=":",
                                                     label=target_label(True)))
        # title and legend belong to the figure, not the axes: new axes limits redraw the
        # axes alone (ticks and labels), and these keep their pixels (a third of the work)
        fig = panel.figure
        self.title = panel.add_sticky(fig.text(0.5, 0.98, "test-layer TNMSE: lower is better",
                                               ha="center", va="top", fontsize=9))
        # tight_layout measures text; the top 7 % is the title's, and the right 3 % keeps
        # room for a wider last tick label (the generation axis reaches 1000s later on)
        with RENDER_LOCK:
            fig.tight_layout(rect=(0.0, 0.0, 0.97, 0.93))
        handles, labels = ax.get_legend_handles_labels()
        # opaque: its kept pixels are pasted over the data (and over a redrawn axes)
        # upper right, over the head room the TNMSE axis keeps above the data (limits)
        self.legend = panel.add_sticky(fig.legend(
            handles, labels, fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 1.0),
            bbox_transform=ax.transAxes, framealpha=1.0))
        self._target_entry = handles.index(self.target_line)
        # this run's limits: they only widen while it runs
        self._x_top: float | None = None
        self._y_range: tuple[float, float] | None = None

    def set_early_stop(self, on: bool) -> None:
        """Say in the legend whether reaching the target ends the run (the optimizer's
        default ``callback``) or not (``callback=None`` or the user's own)."""
        label = target_label(on)
        self.target_line.set_label(label)
        self.legend.get_texts()[self._target_entry].set_text(label)

    def reset(self) -> None:
        """Forget the run's limits (a new run starts)."""
        self._x_top = self._y_range = None

    def show(self, gens: np.ndarray, best: np.ndarray, band: np.ndarray,
             baseline: tuple[float, float] | None, maxiter: int, pace: float,
             running: bool) -> None:
        """Move a run's state into the artists.

        Args:
            gens, best: generation numbers and the best TNMSE after each.
            band: the population's 10–90 % TNMSE, ``[len(gens), 2]``.
            baseline: ``(baseline TNMSE, target TNMSE)`` once measured.
            maxiter: the run's generation budget.
            pace: generations per second so far.
            running: whether the run goes on (limits only widen) or has ended (they fit).
        """
        self.best_line.set_data(gens, best)
        if len(gens) and np.isfinite(band).all():
            self.band_patch.set_xy(np.concatenate([np.c_[gens, band[:, 1]],
                                                   np.c_[gens[::-1], band[::-1, 0]]]))
        else:
            self.band_patch.set_xy(np.zeros((0, 2)))
        level = [np.nan, np.nan] if baseline is None else baseline
        self.baseline_line.set_ydata([level[0], level[0]])
        self.target_line.set_ydata([level[1], level[1]])
        x_top, (y_lo, y_hi) = self.limits(gens, best, baseline, maxiter, pace, running)
        ax = self.ax
        if ax.get_xlim() != (0.0, x_top):
            ax.set_xlim(0.0, x_top)
        if ax.get_ylim() != (y_lo, y_hi):
            ax.set_ylim(y_lo, y_hi)
            # labelled ticks at 1, 2, 5 × 10^k; within one decade also at 1.5, 3 and 7
            subs = (1.0, 2.0, 5.0) if y_hi / y_lo > 10.0 + 1e-9 else (1.0, 1.5, 2.0, 3.0,
                                                                      5.0, 7.0)
            ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=subs))

    def limits(self, gens: np.ndarray, best: np.ndarray,
               baseline: tuple[float, float] | None, maxiter: int, pace: float,
               running: bool) -> tuple[float, tuple[float, float]]:
        """``(x_top, (y_lo, y_hi))``: the generation axis reaches :data:`X_HORIZON_S`
        seconds ahead at ``pace`` (at most ``maxiter``); the TNMSE axis spans the best
        TNMSE, the baseline and the target with 15 % margins and head room for the legend
        (the data in the lower :data:`DATA_HEIGHT`), ends rounded outwards to 1, 2, 5 ×
        10^k. While ``running`` both only widen; after the run they fit it. The population
        band is not fitted: its early spread runs off the top."""
        last = float(gens[-1]) if len(gens) else 0.0
        if not running:
            x_top = min(float(maxiter), nice_ceil(max(1.0, last), LOG_STEPS))
        elif self._x_top is not None and last <= self._x_top:
            x_top = self._x_top
        else:
            x_top = min(float(maxiter),
                        nice_ceil(max(1.0, last + pace * X_HORIZON_S), LOG_STEPS))
        values = np.append(best, [] if baseline is None else list(baseline))
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            # 1 / nice_ceil(1 / v) rounds down to 1, 2, 5 × 10^k (the steps' reciprocals)
            lo = 1.0 / nice_ceil(1.15 / float(values.min()), LOG_STEPS)
            # the data stay in the lower DATA_HEIGHT of the axes: the legend is above them
            top = lo * (1.15 * float(values.max()) / lo) ** (1.0 / DATA_HEIGHT)
            y_range = (lo, nice_ceil(top, LOG_STEPS))
        else:
            y_range = (0.01, 1.0)
        if running and len(gens):
            if self._y_range is not None:
                y_range = (min(y_range[0], self._y_range[0]),
                           max(y_range[1], self._y_range[1]))
            self._x_top, self._y_range = x_top, y_range
        return x_top, y_range


class StrategyFigure:
    """g(w) of every device of the best strategy so far, over fixed axes.

    One (empty) curve per device and their legend exist from the start, so the legend is
    part of the kept frame; the title is static (the generation and f factors are in the
    monitor's status line, and in the title of an exported figure).

    Args:
        panel: the (empty) figure panel to build on.
        g_max: the devices' largest conductance (µS): the y axis spans ``[0, g_max]``,
            rounded up, and widens only if a curve leaves it.
        n_pairs: conductance pairs per strategy.
    """

    def __init__(self, panel: FigurePanel, g_max: float, n_pairs: int) -> None:
        self.panel = panel
        ax = self.ax = panel.figure.subplots()
        ax.set(xlabel="weight / max|W|", ylabel="conductance (µS)")
        ax.set_title(G_TITLE, fontsize=9)
        self.waiting = panel.add_live(ax.text(
            0.5, 0.5, "waiting for the first generation", transform=ax.transAxes,
            ha="center", va="center", fontsize=9, color="#7f7f7f"))
        ax.set(xlim=(-1.05, 1.05), ylim=(0.0, nice_ceil(1.05 * g_max)), autoscale_on=False)
        ax.grid(alpha=0.3)
        self.lines: list[Any] = []
        self._shown: Any = None  # the strategy the curves show
        self._last: Any = None  # the event of the last strategy shown
        self._make_lines(CustomPairConductanceConverter(
            [1.0] * n_pairs, [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]] * n_pairs,
            invertibility_test=False).device_names)
        few_ticks([ax], 5)
        tight_layout(panel.figure)
        panel.prepare_export = self._export_title

    def show(self, last: Any) -> bool:
        """Show the best strategy of ``last`` (a ``GenerationFinished`` event; None: no
        generation yet). False when it is the strategy already shown (no new frame)."""
        key = None if last is None else (tuple(last.best_f_lst),
                                          tuple(map(tuple, last.best_g_lst)))
        self._last = last
        if key == self._shown and self.panel.image.value:
            return False
        self._shown = key
        self.waiting.set_visible(last is None)
        if last is None:
            for line in self.lines:
                line.set_data([], [])
            return True
        conv = CustomPairConductanceConverter(
            list(last.best_f_lst), [list(row) for row in last.best_g_lst],
            invertibility_test=False)
        w, gs = conductance_curves(conv)
        if len(self.lines) != len(gs):  # another device count than announced
            self._make_lines(conv.device_names)
        for line, g in zip(self.lines, gs, strict=True):
            line.set_data(w, g)
        top = max((float(np.nanmax(g)) for g in gs if np.isfinite(g).any()), default=0.0)
        if top > self.ax.get_ylim()[1]:
            self.ax.set_ylim(0.0, nice_ceil(top * 1.05))
        return True

    def _make_lines(self, names: list[str]) -> None:
        """One (empty) live curve per device and their legend, replacing any before."""
        panel, ax = self.panel, self.ax
        for line in self.lines:
            panel.live.remove(line)
            line.remove()
        legend = ax.get_legend()
        if legend is not None:
            panel.sticky.remove(legend)
            legend.remove()
        self.lines = [panel.add_live(ax.plot([], [], label=name,
                                             **device_style(i, len(names)))[0])
                      for i, name in enumerate(names)]
        panel.add_sticky(ax.legend(fontsize=7, loc="upper center"))

    def _export_title(self, scale: float) -> None:
        """An exported figure names the strategy's generation and f factors in its title."""
        last = self._last
        if scale == 1.0 or last is None:
            self.ax.set_title(G_TITLE, fontsize=9)
        else:
            f_txt = ", ".join(f"{f:.3g}" for f in last.best_f_lst)
            self.ax.set_title(f"best strategy (generation {last.generation}), "
                              f"f = [{f_txt}]", fontsize=9)
