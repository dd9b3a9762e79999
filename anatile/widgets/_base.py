"""Shared machinery of the anatile widgets: throttled redraws, a visible error log, figure
panels rendered to PNG, and the static fallback (``_repr_png_`` / ``save``).

Why PNG images and not an ipympl canvas: a ``widgets.Image`` holding PNG bytes renders the
same in JupyterLab, in a headless browser, in ``nbclient`` (the bytes are in the saved widget
state) and in static exports, needs no extra frontend extension, and a redraw is one Agg
render plus one image trait update (≈60 ms for the 512×512 inspector panels). An ipympl
canvas needs its labextension and a live comm round trip for every frame and shows nothing
after ``nbclient``/``nbconvert``.
"""

from __future__ import annotations

import functools
import io
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import ipywidgets as widgets
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["EXPORT_FORMATS", "RENDER_LOCK", "AnatileWidget", "FigurePanel", "Throttle",
           "tight_layout"]

F = TypeVar("F", bound=Callable[..., Any])

#: one lock for every matplotlib draw in the process: text layout shares cached FreeType
#: fonts, which are not thread-safe (a timer-thread redraw next to a kernel-thread export
#: fails with "failed to load glyph").
RENDER_LOCK = threading.RLock()

def tight_layout(figure: Figure) -> None:
    """``figure.tight_layout()`` under :data:`RENDER_LOCK` (it measures text)."""
    with RENDER_LOCK:
        figure.tight_layout()


#: the frame-rate floor (``max_interval``) never pushes a view above this duty.
HARD_MAX_DUTY = 0.25

#: figure formats of the export methods and buttons.
EXPORT_FORMATS = ("png", "svg")

#: default minimum time between two redraws of one panel (bursts are coalesced).
DEFAULT_MIN_INTERVAL_S = 0.1


class Throttle:
    """Coalesce bursts of redraw requests into at most one call per ``min_interval`` seconds.

    ``request()`` never runs the callback on the caller's thread: the first request arms a
    timer thread that fires after the remaining quiet time, so an emitter (a programming loop,
    the optimizer) never pays for a render. All requests that arrive before the timer fires
    are served by that one call (the trailing edge always runs, so the last state is drawn).
    ``flush()`` runs the callback now, on the caller's thread, and cancels the pending timer.

    Args:
        fn: the redraw callable (no arguments).
        min_interval: minimum seconds between two calls.
        max_duty: at most this fraction of wall time is spent in ``fn``: after a call that
            took ``d`` seconds the next waits at least ``d · (1/max_duty − 1)``. Keeps a slow
            render from eating into a computation it is watching (1.0 disables it).
        on_error: receives any exception raised by ``fn`` (it is never re-raised in the
            timer thread, where it would be lost).
        max_interval: the duty stretch never makes the gap longer than this (a live view
            keeps a minimum frame rate; ``min_interval`` still wins when larger).
    """

    def __init__(
        self,
        fn: Callable[[], None],
        min_interval: float = DEFAULT_MIN_INTERVAL_S,
        on_error: Callable[[BaseException], None] | None = None,
        max_duty: float = 1.0,
        max_interval: float = float("inf"),
    ) -> None:
        if min_interval < 0:
            raise ValueError(f"min_interval: expected >= 0, got {min_interval}")
        if not 0 < max_duty <= 1:
            raise ValueError(f"max_duty: expected a fraction in (0, 1], got {max_duty}")
        self._fn = fn
        self.min_interval = float(min_interval)
        self.max_duty = float(max_duty)
        self.max_interval = float(max_interval)
        self._on_error = on_error
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()  # one call of fn at a time, whichever thread
        self._timer: threading.Timer | None = None
        self._next = -float("inf")  # earliest start of the next call
        self.calls = 0
        self.requests = 0
        self.busy_s = 0.0  # total seconds spent in fn (the benchmark reads it)

    @property
    def pending(self) -> bool:
        """Whether a trailing-edge call is scheduled."""
        return self._timer is not None

    def request(self) -> None:
        """Ask for a call; it happens on a timer thread within ``min_interval`` seconds."""
        with self._lock:
            self.requests += 1
            if self._timer is not None:
                return
            delay = max(0.0, self._next - time.monotonic())
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
        self._run()

    def flush(self) -> None:
        """Call now (on this thread), cancelling any scheduled call."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._run()

    def cancel(self) -> None:
        """Drop a scheduled call (used when the widget closes)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _run(self) -> None:
        with self._run_lock:
            start = time.monotonic()
            try:
                self._fn()
            except Exception as exc:  # reported to the widget's log
                if self._on_error is None:
                    raise
                self._on_error(exc)
            finally:
                self.calls += 1
                end = time.monotonic()
                self.busy_s += end - start
                with self._lock:
                    # duty limit: rest `busy` after a call that took (end - start) ...
                    busy = (end - start) * (1.0 / self.max_duty - 1.0)
                    duty_next = end + max(self.min_interval, busy)
                    # ... but start again within max_interval of this call's start (never
                    # sooner than min_interval after its end, and never above a hard 25 %
                    # duty: on a starved machine a slow render must not eat the CPU)
                    cap = max(start + self.max_interval, end + self.min_interval,
                              end + (end - start) * (1.0 / HARD_MAX_DUTY - 1.0))
                    self._next = min(duty_next, cap)


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


def _stack_pngs(images: list[bytes]) -> bytes:
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


class AnatileWidget(widgets.VBox):
    """Base of the anatile widgets: a VBox with figure panels, a status line and an error log.

    Subclasses create named panels with :meth:`_panel` (each with an ``update`` function that
    moves stored state into its artists), wrap every callback with :meth:`_guarded` (so
    exceptions land in :attr:`log_area` instead of the kernel log), mark panels stale with
    :meth:`_invalidate` (redraws are throttled and coalesced; only stale panels render) and
    build ``children`` themselves, ending with :attr:`log_area`.

    Attributes:
        log_area: ``widgets.Output`` where callback exceptions are shown (never cleared).
        errors: the formatted tracebacks shown in :attr:`log_area`, oldest first.
    """

    def __init__(
        self,
        min_interval: float = DEFAULT_MIN_INTERVAL_S,
        max_duty: float = 1.0,
        max_interval: float = float("inf"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # CSS hooks for notebooks, docs and the browser test
        self.add_class("anatile-widget")
        self.add_class(f"anatile-{type(self).__name__}")
        self.errors: list[str] = []
        self.log_area = widgets.Output(
            layout=widgets.Layout(max_height="160px", overflow="auto", border="1px solid #ddd")
        )
        self._error_label = widgets.HTML("")
        self._panels: dict[str, FigurePanel] = {}
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._unsubscribe: list[Callable[[], None]] = []
        self._redraw = Throttle(self._draw, min_interval, self._report, max_duty, max_interval)
        # while building, panels are only marked stale: the constructor's last refresh()
        # draws them all on the caller's thread (no timer racing the first frame)
        self._holding = False

    # ------------------------------------------------------------------ errors
    def _report(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.errors.append(text)
        self.log_area.append_stderr(text)
        self._error_label.value = (
            f"<span style='color:#b00'>{len(self.errors)} error(s) — see the log below</span>"
        )

    def _guarded(self, fn: F) -> F:
        """Wrap a callback so that an exception is shown in the log area, not lost."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # shown to the user
                self._report(exc)
                return None

        return wrapper  # type: ignore[return-value]

    @contextmanager
    def _busy(self, *controls: widgets.Widget) -> Iterator[None]:
        """Disable ``controls`` while an action runs."""
        for c in controls:
            c.disabled = True
        try:
            yield
        finally:
            for c in controls:
                c.disabled = False

    # ----------------------------------------------------------------- drawing
    def _panel(
        self,
        name: str,
        figsize: tuple[float, float],
        update: Callable[[], bool | None] | None = None,
        dpi: int = 80,
    ) -> FigurePanel:
        panel = FigurePanel(figsize, update, dpi)
        self._panels[name] = panel
        return panel

    def _invalidate(self, *names: str) -> None:
        """Mark panels stale (all when none named) and ask for a throttled redraw."""
        with self._dirty_lock:
            self._dirty.update(names or self._panels)
        if not self._holding:
            self._redraw.request()

    def _draw(self) -> None:
        with self._dirty_lock:
            names = [n for n in self._panels if n in self._dirty]
            self._dirty.clear()
        for name in names:
            panel = self._panels[name]
            try:
                with RENDER_LOCK:  # an update may lay text out (legends, tight layouts)
                    # an update that returns False has nothing new: the image stays
                    if panel.update is not None and panel.update() is False:
                        continue
                    panel.render()
            except Exception as exc:  # one broken panel must not hide others
                self._report(exc)

    def refresh(self, *names: str) -> None:
        """Redraw the named (default: stale) panels now instead of within the interval."""
        self._holding = False
        with self._dirty_lock:
            self._dirty.update(names)
        self._redraw.flush()

    def _subscribe(self, hub: Any, callback: Callable[[Any], Any]) -> None:
        sub = hub.subscribe(callback)
        self._unsubscribe.append(sub.cancel)

    # --------------------------------------------------------- static fallback
    def _repr_png_(self) -> bytes:
        """The widget's figures as one PNG (for nbconvert and documentation builds)."""
        return _stack_pngs([p.png() for p in self._panels.values()])

    def save(self, path: str | Path) -> Path:
        """Write the widget's figures as one PNG file; returns the path."""
        path = Path(path)
        path.write_bytes(self._repr_png_())
        return path

    # ------------------------------------------------------------------ export
    def export(
        self,
        directory: str | Path = ".",
        formats: tuple[str, ...] | list[str] = EXPORT_FORMATS,
        dpi: int = 150,
        stem: str | None = None,
    ) -> list[Path]:
        """Write every figure (one file per panel and format) and the widget's data.

        Figures go to ``<directory>/<stem>_<panel>.<format>`` (PNG at ``dpi``, SVG);
        :meth:`export_data` adds the tables, histories and converters (CSV / JSON).

        Args:
            directory: an existing folder.
            formats: some of ``("png", "svg")``.
            dpi: resolution of the PNG files.
            stem: file-name prefix (default the widget's class name).

        Returns:
            The paths written.

        Raises:
            ValueError: if ``directory`` is not a folder, a format is unknown or ``dpi`` is
                not a positive integer (nothing is written then).
        """
        folder = Path(directory)
        if not folder.is_dir():
            raise ValueError(f"directory: expected an existing folder, got {str(directory)!r}")
        fmts = [formats] if isinstance(formats, str) else list(formats)
        bad = [f for f in fmts if f not in EXPORT_FORMATS]
        if bad or not fmts:
            raise ValueError(f"formats: expected some of {EXPORT_FORMATS}, got {formats!r}")
        if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi <= 0:
            raise ValueError(f"dpi: expected a positive integer, got {dpi!r}")
        stem = stem or type(self).__name__
        written = [
            panel.export(folder / f"{stem}_{name}.{fmt}", dpi)
            for name, panel in self._panels.items()
            for fmt in fmts
        ]
        written += self.export_data(folder, stem)
        return written

    def export_data(self, directory: str | Path, stem: str | None = None) -> list[Path]:
        """Write the widget's tables / histories (CSV) and converters (JSON); see subclasses."""
        return []

    def _export_controls(self) -> widgets.HBox:
        """The export row: folder, format, dpi, **Export** button and what was written."""
        self.export_folder = widgets.Text(value=".", description="export to",
                                          layout=widgets.Layout(width="260px"))
        self.export_format = widgets.Dropdown(options=["png", "svg", "png+svg"],
                                              value="png+svg", description="format",
                                              layout=widgets.Layout(width="210px"))
        self.export_dpi = widgets.BoundedIntText(value=150, min=20, max=1200,
                                                 description="dpi",
                                                 layout=widgets.Layout(width="140px"))
        self.export_button = widgets.Button(description="Export", icon="download",
                                            layout=widgets.Layout(width="auto"))
        self.export_result = widgets.HTML("")
        self.export_result.add_class("anatile-export-result")

        def on_click(_b: Any) -> None:
            paths = self.export(self.export_folder.value,
                                tuple(self.export_format.value.split("+")),
                                int(self.export_dpi.value))
            self.export_result.value = "wrote " + ", ".join(p.name for p in paths)

        self.export_button.on_click(self._guarded(on_click))
        return widgets.HBox([self.export_folder, self.export_format, self.export_dpi,
                             self.export_button, self.export_result])

    def _closers(self) -> list[Callable[[], None]]:
        """What :meth:`close` calls: unsubscribe, drop pending redraws (subclasses extend)."""
        return [*self._unsubscribe, self._redraw.cancel]

    def close(self) -> None:
        """Unsubscribe from the model's events, drop pending redraws and close the view."""
        # ipywidgets' __del__ calls close() even when __init__ raised (bad arguments)
        if self.__dict__.get("_redraw") is not None:
            for cancel in self._closers():
                cancel()
            self._unsubscribe.clear()
        super().close()
