"""LiveYTicks: an axes' y ticks, tick labels and grid lines drawn as live artists.

A panel whose y limits change on almost every update (the trace panel: every clicked
weight has its own range) would lay its frame out again each time: tick labels are most of
a matplotlib draw (~100 ms on the trace panel). Drawn as a handful of live artists instead
(one line of tick marks, one line of grid segments, a few texts), the frame no longer
depends on the y limits (:meth:`~anatile.widgets._figure.FigurePanel.add_live_ylim`): it is
drawn once, and new limits cost a few short texts per frame. The axis label keeps a fixed
place, left of the widest tick label the axis expects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.markers import TICKLEFT, MarkerStyle
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, NullLocator
from matplotlib.transforms import ScaledTranslation

from anatile.widgets._figure import RENDER_LOCK, FigurePanel

__all__ = ["LiveYTicks", "tick_labels"]

_MINUS = "\u2212"  # what matplotlib's tick labels use (axes.unicode_minus)


def tick_labels(values: Sequence[float]) -> list[str]:
    """Fixed-point labels of tick ``values`` with the fewest decimals that show each value
    exactly (as far as 12 decimals go), a typographic minus, and no ``−0``."""
    vals = [float(v) for v in values]
    if not vals:
        return []
    step = min((abs(b - a) for a, b in zip(vals, vals[1:], strict=False) if b != a),
               default=max(abs(v) for v in vals) or 1.0)
    decimals = 12
    for d in range(13):
        if all(abs(round(v, d) - v) <= 1e-6 * step for v in vals):
            decimals = d
            break
    out = []
    for v in vals:
        v = 0.0 if abs(v) <= 1e-9 * step else v
        out.append(f"{v:.{decimals}f}".replace("-", _MINUS))
    return out


class LiveYTicks:
    """The y ticks of ``ax`` as live artists of ``panel`` (see the module docstring).

    ``ax``'s own y locators become :class:`~matplotlib.ticker.NullLocator`; :meth:`set_ylim`
    sets the limits and places at most ``n_ticks + 1`` nice ticks
    (:class:`~matplotlib.ticker.MaxNLocator`) with their labels and grid lines. The axis
    label sits left of room for ``widest_label`` (with matplotlib's tick length, pad and
    label pad), so labels of up to that width never reach it.

    Args:
        panel: the panel ``ax`` belongs to.
        ax: the axes.
        n_ticks: the locator's ``nbins``.
        widest_label: the widest tick label to leave room for.
        grid_alpha: opacity of the grid lines (as ``ax.grid(alpha=...)``).
    """

    def __init__(self, panel: FigurePanel, ax: Axes, n_ticks: int = 4,
                 widest_label: str = _MINUS + "0.0000", grid_alpha: float = 0.3) -> None:
        fig = ax.figure
        assert isinstance(fig, Figure)
        self.ax = ax
        self.locator = MaxNLocator(n_ticks)
        ax.yaxis.set_major_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())
        panel.add_live_ylim(ax)
        size = float(rcParams["ytick.major.size"])
        pad = float(rcParams["ytick.major.pad"])
        color = rcParams["ytick.color"]
        label_color = rcParams["ytick.labelcolor"]
        label_color = color if label_color == "inherit" else label_color
        self.fontsize = rcParams["ytick.labelsize"]
        self.label_color = label_color
        yaxis = ax.get_yaxis_transform()  # x in axes fractions, y in data
        self.marks = Line2D([], [], transform=yaxis, linestyle="none", marker=MarkerStyle(TICKLEFT),
                            markersize=size, markeredgewidth=rcParams["ytick.major.width"],
                            color=color)
        self.grid = Line2D([], [], transform=yaxis, color=rcParams["grid.color"],
                           linewidth=rcParams["grid.linewidth"],
                           linestyle=rcParams["grid.linestyle"], alpha=grid_alpha,
                           zorder=1.5)  # under the data (2), as axes.axisbelow "line"
        for line in (self.marks, self.grid):
            ax.add_line(line)
            panel.add_live(line)
        self.marks.set_clip_on(False)  # the marks stand outside the axes
        self._text_offset = ScaledTranslation(-(size + pad) / 72.0, 0.0, fig.dpi_scale_trans)
        self._panel = panel
        self.labels: list[Text] = [self._new_label() for _ in range(n_ticks + 2)]
        with RENDER_LOCK:
            probe = Text(0.0, 0.0, widest_label, fontsize=self.fontsize)
            probe.set_figure(fig)
            renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
            width_pt = probe.get_window_extent(renderer).width * 72.0 / fig.dpi
        room = size + pad + width_pt + float(rcParams["axes.labelpad"])
        ax.yaxis.set_label_coords(0.0, 0.5, transform=ax.transAxes + ScaledTranslation(
            -room / 72.0, 0.0, fig.dpi_scale_trans))
        #: the tick values shown (after :meth:`set_ylim`)
        self.values: list[float] = []

    def _new_label(self) -> Text:
        ax = self.ax
        text = ax.text(0.0, 0.0, "", transform=ax.get_yaxis_transform() + self._text_offset,
                       ha="right", va="center_baseline", fontsize=self.fontsize,
                       color=self.label_color, clip_on=False, visible=False)
        return self._panel.add_live(text)

    def set_ylim(self, lo: float, hi: float) -> None:
        """Set ``ax``'s y limits and place the ticks, labels and grid lines for them."""
        self.ax.set_ylim(lo, hi)
        lo, hi = sorted(self.ax.get_ylim())
        eps = 1e-9 * (hi - lo if hi > lo else 1.0)
        values = [float(v) for v in self.locator.tick_values(lo, hi)
                  if lo - eps <= v <= hi + eps and math.isfinite(v)]
        while len(self.labels) < len(values):
            self.labels.append(self._new_label())
        for text, label, value in zip(self.labels, tick_labels(values), values, strict=False):
            text.set_position((0.0, value))
            text.set_text(label)
            text.set_visible(True)
        for text in self.labels[len(values):]:
            text.set_visible(False)
        self.marks.set_data([0.0] * len(values), values)
        xs = np.tile([0.0, 1.0, np.nan], len(values))
        ys = np.repeat(np.asarray(values, dtype=np.float64), 3)
        ys[2::3] = np.nan
        self.grid.set_data(xs, ys)
        self.values = values
