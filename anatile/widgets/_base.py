"""AnatileWidget: the base of the anatile widgets: named figure panels with throttled,
coalesced redraws, a visible error log, export buttons and the static fallback
(``_repr_png_`` / ``save``).

The panels are :class:`~anatile.widgets._figure.FigurePanel` (PNG images; why PNG and not
an ipympl canvas is said there) and redraws go through a
:class:`~anatile.widgets._throttle.Throttle`; both are re-exported here.
"""

from __future__ import annotations

import functools
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import ipywidgets as widgets

from anatile.widgets._figure import (
    EXPORT_FORMATS,
    RENDER_LOCK,
    FigurePanel,
    stack_pngs,
    tight_layout,
)
from anatile.widgets._throttle import DEFAULT_MIN_INTERVAL_S, HARD_MAX_DUTY, Throttle

__all__ = ["DEFAULT_MIN_INTERVAL_S", "EXPORT_FORMATS", "HARD_MAX_DUTY", "RENDER_LOCK",
           "AnatileWidget", "FigurePanel", "Throttle", "tight_layout"]

F = TypeVar("F", bound=Callable[..., Any])


class AnatileWidget(widgets.VBox):
    """Base of the anatile widgets: a VBox with figure panels, a status line and an error log.

    Subclasses create named panels with :meth:`_panel` (each with an ``update`` function that
    moves stored state into its artists), wrap every callback with :meth:`_guarded` (so
    exceptions land in ``log_area`` instead of the kernel log), mark panels stale with
    :meth:`_invalidate` (redraws are throttled and coalesced; only stale panels render) and
    build ``children`` themselves, ending with ``log_area``.

    Attributes:
        log_area: ``widgets.Output`` where callback exceptions are shown (never cleared).
        errors: the formatted tracebacks shown in ``log_area``, oldest first.
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
        # a CSS hook per panel: notebooks and the browser tests find a figure by its name
        panel.image.add_class(f"anatile-panel-{name}")
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
        return stack_pngs([p.png() for p in self._panels.values()])

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
