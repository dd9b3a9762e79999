"""FigurePanel: a matplotlib figure rendered to PNG in an image widget, with fast overlays.

Why PNG images and not an ipympl canvas: a ``widgets.Image`` holding PNG bytes renders the
same in JupyterLab, in a headless browser, in ``nbclient`` (the bytes are in the saved widget
state) and in static exports, needs no extra frontend extension, and a redraw is one Agg
render plus one image trait update (≈60 ms for the 512×512 inspector panels). An ipympl
canvas needs its labextension and a live comm round trip for every frame and shows nothing
after ``nbclient``/``nbconvert``.

Every matplotlib draw of the widgets goes through :data:`RENDER_LOCK`.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["EXPORT_FORMATS", "RENDER_LOCK", "FigurePanel", "stack_pngs", "tight_layout"]


#: one lock for every matplotlib draw in the process: text layout shares cached FreeType
#: fonts, which are not thread-safe (a timer-thread redraw next to a kernel-thread export
#: fails with "failed to load glyph").
RENDER_LOCK = threading.RLock()

def tight_layout(figure: Figure) -> None:
    """``figure.tight_layout()`` under :data:`RENDER_LOCK` (it measures text)."""
    with RENDER_LOCK:
        figure.tight_layout()


#: figure formats of the export methods and buttons.
EXPORT_FORMATS = ("png", "svg")


class FigurePanel:
    """A matplotlib figure (Agg canvas, no pyplot state) shown as PNG in a ``widgets.Image``.

    Build the artists once, then update them in place (``set_data``/``set_offsets``/
    ``set_array``) and call :meth:`render`.

    Overlays (the selection markers) are *animated* artists: a full render draws the figure
    without them, keeps that background, then draws them on top; :meth:`render_overlays`
    only restores the kept background and redraws the overlays (a few ms instead of a full
    redraw), which is what makes a click highlight fast. Exports (``savefig``) include them.
    """

    def __init__(
        self,
        figsize: tuple[float, float],
        update: Callable[[], bool | None] | None = None,
        dpi: int = 80,
    ) -> None:
        self.figure = Figure(figsize=figsize, dpi=dpi)
        self.update = update  # moves the model's state into the artists before a render
        FigureCanvasAgg(self.figure)
        self.dpi = dpi
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.render_s = 0.0  # wall time of the last render, for the benchmark
        self.overlays: list[Artist] = []
        self._background: Any = None
        self._lock = threading.Lock()

    def add_overlay(self, artist: Artist) -> Artist:
        """Register ``artist`` as an overlay (drawn on top, redrawn by :meth:`render_overlays`)."""
        artist.set_animated(True)
        self.overlays.append(artist)
        return artist

    def png(self, full: bool = True) -> bytes:
        """Render the figure to PNG bytes (thread-safe).

        One Agg draw and a fast PNG encode of the canvas buffer: ``savefig`` would draw
        twice (a layout pass, then the render) and compress harder, ~1.5× the cost.

        Args:
            full: redraw everything; False redraws only the overlays over the background of
                the last full render (falls back to a full render when there is none).
        """
        from PIL import Image  # matplotlib depends on Pillow

        with self._lock, RENDER_LOCK:
            canvas = self.figure.canvas
            assert isinstance(canvas, FigureCanvasAgg)
            if full or self._background is None:
                canvas.draw()
                self._background = canvas.copy_from_bbox(self.figure.bbox)
            else:
                canvas.restore_region(self._background)
            for artist in self.overlays:
                if artist.get_visible() and artist.axes is not None:
                    artist.axes.draw_artist(artist)
            width, height = canvas.get_width_height()
            image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw",
                                     "RGBA", 0, 1).convert("RGB")
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    def render(self, full: bool = True) -> None:
        """Render the figure and push the PNG to the image widget."""
        start = time.perf_counter()
        data = self.png(full)
        self.image.value = data
        self.render_s = time.perf_counter() - start

    def render_overlays(self) -> None:
        """Redraw only the overlays (after a selection change) and push the PNG."""
        self.render(full=False)

    def export(self, path: str | Path, dpi: int = 150) -> Path:
        """Write the figure to ``path``; the format follows the suffix (``.png``, ``.svg``).

        Raises:
            ValueError: on another suffix or a dpi that is not a positive integer.
        """
        path = Path(path)
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"path: expected a name ending in .png or .svg, got {str(path)!r}")
        if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi <= 0:
            raise ValueError(f"dpi: expected a positive integer, got {dpi!r}")
        with self._lock, RENDER_LOCK:
            self.figure.savefig(path, format=fmt, dpi=dpi)
            self._background = None  # savefig re-laid the canvas out at another dpi
        return path


def stack_pngs(images: list[bytes]) -> bytes:
    """Stack PNG images vertically on white (the static fallback of a multi-panel widget)."""
    from PIL import Image  # matplotlib depends on Pillow

    decoded = [Image.open(io.BytesIO(b)).convert("RGB") for b in images if b]
    if not decoded:
        return b""
    width = max(im.width for im in decoded)
    out = Image.new("RGB", (width, sum(im.height for im in decoded)), "white")
    y = 0
    for im in decoded:
        out.paste(im, (0, y))
        y += im.height
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()
