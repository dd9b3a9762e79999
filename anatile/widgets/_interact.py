"""Mouse interaction on a figure panel: ipyevents on the panel's PNG image, mapped back to
matplotlib data coordinates.

The browser sends the pointer position in the image's own pixels (``dataX``/``dataY``,
corrected for CSS scaling by ipyevents); the figure's transforms turn that into the axes
under the pointer and its data coordinates. Hover, click, wheel (zoom) and drag (pan) are
reported to the widget's callbacks; nothing is computed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from anatile.widgets._base import FigurePanel

__all__ = ["PlotEvents", "PlotPoint", "locate"]

#: a press and release closer than this (image pixels) is a click, farther apart a drag.
CLICK_SLOP_PX = 4


@dataclass(frozen=True)
class PlotPoint:
    """Where the pointer is: the axes under it and the data coordinates there."""

    axes: Axes
    x: float
    y: float


def locate(figure: Figure, x_px: float, y_px: float) -> PlotPoint | None:
    """The axes and data coordinates at image pixel ``(x_px, y_px)`` (origin top left).

    Returns:
        None when the point lies outside every axes.
    """
    x_disp = float(x_px)
    y_disp = float(figure.bbox.height) - float(y_px)
    for ax in reversed(figure.axes):  # the topmost axes first (a colorbar over a heatmap)
        if ax.bbox.contains(x_disp, y_disp):
            x, y = ax.transData.inverted().transform((x_disp, y_disp))
            return PlotPoint(ax, float(x), float(y))
    return None


def pixel_of(ax: Axes, x: float, y: float) -> tuple[float, float]:
    """Image pixel (origin top left) of data point ``(x, y)`` of ``ax`` (inverse of locate)."""
    x_disp, y_disp = ax.transData.transform((x, y))
    fig = ax.figure
    assert isinstance(fig, Figure)
    return float(x_disp), float(fig.bbox.height) - float(y_disp)


Callback = Callable[[PlotPoint], None]


class PlotEvents:
    """Hover, click, wheel and drag on a :class:`FigurePanel`'s image.

    Args:
        panel: the panel whose image receives the pointer.
        on_hover: called with the point under the pointer (throttled to ``hover_ms``).
        on_click: called with the clicked point (press and release within a few pixels).
        on_wheel: called with the point and the wheel's ``deltaY`` (> 0: away from the user).
        on_drag: called with the press point and the release point (both in one axes).
        hover_ms: minimum milliseconds between two hover events sent by the browser.
    """

    def __init__(
        self,
        panel: FigurePanel,
        on_hover: Callback | None = None,
        on_click: Callback | None = None,
        on_wheel: Callable[[PlotPoint, float], None] | None = None,
        on_drag: Callable[[PlotPoint, PlotPoint], None] | None = None,
        hover_ms: int = 40,
    ) -> None:
        self.panel = panel
        self.on_hover = on_hover
        self.on_click = on_click
        self.on_wheel = on_wheel
        self.on_drag = on_drag
        self._press: tuple[float, float] | None = None
        self.dom: Any = None
        try:
            from ipyevents import Event
        except ImportError:  # the views still work from code (select, zoom) without it
            return
        watched = ["mousedown", "mouseup"]
        if on_hover is not None:
            watched.append("mousemove")
        if on_wheel is not None:
            watched.append("wheel")
        self.dom = Event(source=panel.image, watched_events=watched,
                         prevent_default_action=on_wheel is not None,
                         wait=hover_ms, throttle_or_debounce="throttle")
        self.dom.on_dom_event(self.handle)

    def handle(self, event: dict[str, Any]) -> None:
        """Dispatch one browser event (the dict ipyevents sends; tests call this directly)."""
        kind = event.get("type")
        if "dataX" not in event:
            return
        x_px, y_px = float(event["dataX"]), float(event["dataY"])
        if kind == "mousedown":
            self._press = (x_px, y_px)
            return
        point = locate(self.panel.figure, x_px, y_px)
        if kind == "mouseup":
            press, self._press = self._press, None
            if press is None:
                return
            if abs(press[0] - x_px) + abs(press[1] - y_px) <= CLICK_SLOP_PX:
                if point is not None and self.on_click is not None:
                    self.on_click(point)
            elif self.on_drag is not None:
                start = locate(self.panel.figure, *press)
                if start is not None and point is not None and start.axes is point.axes:
                    self.on_drag(start, point)
        elif kind == "mousemove" and point is not None and self.on_hover is not None:
            self.on_hover(point)
        elif kind == "wheel" and point is not None and self.on_wheel is not None:
            self.on_wheel(point, float(event.get("deltaY", 0.0)))

    def close(self) -> None:
        """Close the browser-side event listener."""
        if self.dom is not None:
            self.dom.close()
