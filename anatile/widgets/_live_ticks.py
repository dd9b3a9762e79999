"""LiveYTicks: an axes' y ticks, tick labels and grid lines drawn as live artists.

A panel whose y limits change on almost every update (the trace panel: every clicked
weight has its own range) would lay its frame out again each time: tick labels are most of
a matplotlib draw (~100 ms on the trace panel). Drawn as a handful of live artists instead
(one line of tick marks, one line of grid segments, a few texts), the frame no longer
depends on the y limits (:meth:`~anatile.widgets._figure.FigurePanel.add_live_ylim`): it is
drawn once, and new limits cost a few short texts per frame. The axis label keeps a fixed
place, left of the widest tick label the axis expects.

Even a short text costs about a millisecond to lay out and rasterize, and the tick labels
were a third of a click's redraw. On the live (Agg) frames the labels are therefore
*stamps*: each label string is rasterized once, at a whole-pixel anchor over the figure's
blank margin, its pixels are kept, and later frames copy them to the label's (whole-pixel)
place (:class:`TickLabelStamps`). Exports draw the labels as ordinary texts.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import rcParams
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.markers import TICKLEFT, MarkerStyle
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, NullLocator
from matplotlib.transforms import Bbox, IdentityTransform, ScaledTranslation

from anatile.widgets._figure import RENDER_LOCK, FigurePanel

__all__ = ["LiveYTicks", "TickLabelStamps", "tick_labels"]

#: label strings whose pixels a :class:`TickLabelStamps` keeps (a few hundred bytes each)
STAMP_CACHE_SIZE = 256

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


class TickLabelStamps(Artist):
    """Draws the visible ``labels`` of an axes on an Agg canvas from kept pixels.

    Not a child of the axes or the figure (``savefig`` draws the texts themselves); it is
    a live artist of the panel. Each label is placed at its anchor (the point its text is
    aligned to) rounded to whole pixels. The first time a string is drawn it is rasterized
    there by ``stamp`` (a text of the same font, colour and alignment) and the pixels of
    its box, 1 px around, are kept; afterwards they are copied to the new anchor. The box
    must lie over blank figure margin (what :class:`LiveYTicks` leaves left of the axes),
    since a kept box carries the pixels under the text with it.

    Args:
        ax: the axes whose labels these are (its figure's dpi keys the kept pixels).
        labels: the texts (their string, position, transform and visibility are read at
            each draw).
        stamp: the text used to rasterize a string the first time.
    """

    def __init__(self, ax: Axes, labels: list[Text], stamp: Text) -> None:
        super().__init__()
        self.axes = ax
        self.labels = labels
        self.stamp = stamp
        self.set_animated(True)
        #: by (string, dpi): (kept pixels, offset of their top-left from the anchor)
        self._kept: OrderedDict[tuple[str, float], tuple[Any, int, int]] = OrderedDict()
        self.stamped = 0  # strings rasterized (tests)

    def draw(self, renderer: Any) -> None:
        if not self.get_visible():
            return
        if not isinstance(renderer, RendererAgg):  # not a live frame: plain texts
            for text in self.labels:
                text.draw(renderer)
            return
        height = int(renderer.height)
        dpi = float(renderer.dpi)
        for text in self.labels:
            label = text.get_text()
            if not (text.get_visible() and label):
                continue
            x, y = text.get_transform().transform(text.get_unitless_position())
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            ax_px, ay_px = int(round(x)), int(round(y))
            key = (label, dpi)
            kept = self._kept.get(key)
            if kept is None:  # drawn in place, and its pixels kept
                self._rasterize(renderer, label, ax_px, ay_px, height)
                continue
            self._kept.move_to_end(key)
            region, dx, dy = kept
            renderer.restore_region(region, xy=(ax_px + dx, height - ay_px + dy))

    def _rasterize(self, renderer: RendererAgg, label: str, ax_px: int, ay_px: int,
                   height: int) -> None:
        stamp = self.stamp
        stamp.set_text(label)
        stamp.set_position((ax_px, ay_px))
        stamp.draw(renderer)
        box = stamp.get_window_extent(renderer)
        whole = Bbox.from_extents(math.floor(box.x0) - 1, math.floor(box.y0) - 1,
                                  math.ceil(box.x1) + 1, math.ceil(box.y1) + 1)
        region = renderer.copy_from_bbox(whole)
        x1, y1, _x2, _y2 = region.get_extents()  # top-left, y downwards
        kept = (region, int(x1) - ax_px, int(y1) - (height - ay_px))
        self._kept[(label, float(renderer.dpi))] = kept
        while len(self._kept) > STAMP_CACHE_SIZE:
            self._kept.popitem(last=False)
        self.stamped += 1


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
        # the texts are what an export draws (animated: never in the kept frame); the live
        # frames draw them from kept pixels
        self.labels: list[Text] = [self._new_label() for _ in range(n_ticks + 2)]
        stamp = Text(0.0, 0.0, "", ha="right", va="center_baseline", fontsize=self.fontsize,
                     color=self.label_color, transform=IdentityTransform())
        stamp.set_figure(fig)
        self.stamps = panel.add_live(TickLabelStamps(ax, self.labels, stamp))
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
        text.set_animated(True)
        return text

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
