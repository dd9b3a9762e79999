"""TileControls: the TileInspector's programming and reading controls and progress bar."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from anatile.tiles import ProgrammingReport
from anatile.widgets._base import DEFAULT_MIN_INTERVAL_S, Throttle

__all__ = ["TileControls"]


class TileControls:
    """Learning rate, max_iter and tolerance of a closed-loop programming, the *Program*
    button with its progress bar, over_sampling and the *Read* button.

    The controls show and collect values (the host runs the actions) and follow a
    programming: :meth:`on_progress` with each ``"programming_progress"`` event (the bar is
    redrawn throttled, off the emitting thread), :meth:`on_programmed` at the end.

    Args:
        on_program: called by the *Program* button.
        on_read: called by the *Read* button.
        min_interval: minimum seconds between two progress redraws.
        on_error: receives an exception of a throttled progress redraw.
    """

    def __init__(
        self,
        on_program: Callable[[Any], object],
        on_read: Callable[[Any], object],
        min_interval: float = DEFAULT_MIN_INTERVAL_S,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._progress: dict[str, Any] = {"iteration": 0, "max_iter": 1, "error": float("nan")}
        self._done = False
        self._throttle = Throttle(self._show_progress, min_interval, on_error)
        self.learning_rate = widgets.FloatLogSlider(
            value=0.1, base=10, min=-4, max=0, step=0.1, description="learning rate",
            readout_format=".2g", style={"description_width": "initial"},
        )
        self.max_iter = widgets.BoundedIntText(
            value=1000, min=1, max=1_000_000, description="max_iter",
            layout=widgets.Layout(width="170px"),
        )
        self.tolerance = widgets.BoundedFloatText(
            value=0.01, min=0.0, max=1.0, step=0.001, description="tolerance",
            layout=widgets.Layout(width="170px"),
        )
        self.program_button = widgets.Button(description="Program", icon="upload",
                                             button_style="primary")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="progress")
        self.progress_label = widgets.HTML("")
        self.progress_label.add_class("anatile-progress-label")
        self.program_button.on_click(on_program)
        self.program_box = widgets.VBox([
            widgets.HBox([self.learning_rate, self.max_iter, self.tolerance]),
            widgets.HBox([self.program_button, self.progress, self.progress_label]),
        ])
        self.over_sampling = widgets.IntSlider(value=10, min=1, max=50,
                                               description="over_sampling",
                                               style={"description_width": "initial"})
        self.read_button = widgets.Button(description="Read", icon="search")
        self.read_button.on_click(on_read)
        self.read_box = widgets.HBox([self.over_sampling, self.read_button])

    def closed_loop_options(self) -> dict[str, Any]:
        """The closed-loop programming options the controls set."""
        return {
            "learning_rate": float(self.learning_rate.value),
            "max_iter": int(self.max_iter.value),
            "tolerance": float(self.tolerance.value),
        }

    def hide_closed_loop(self) -> None:
        """Drop the closed-loop options (a tile programmed another way keeps the button)."""
        self.program_box.children = (self.program_box.children[1],)

    def show_started(self) -> None:
        """An empty bar: programming starts."""
        self.progress.value = 0
        self.progress.bar_style = "info"

    def on_progress(self, data: dict[str, Any]) -> None:
        """A ``"programming_progress"`` event (any thread): the bar follows, throttled."""
        with self._lock:
            self._progress = dict(data)
            if data.get("iteration") == 0:
                self._done = False
        self._throttle.request()

    def on_programmed(self, report: ProgrammingReport) -> None:
        """The ``"programmed"`` event: the last progress, then the outcome."""
        self._throttle.flush()
        with self._lock:
            self._done = True
        self.show_done(report)

    def close(self) -> None:
        """Drop a scheduled progress redraw."""
        self._throttle.cancel()

    def _show_progress(self) -> None:
        with self._lock:
            if self._done:  # a late timer must not rewind a finished bar
                return
            progress = dict(self._progress)
        self.show_progress(progress)

    def show_progress(self, progress: dict[str, Any]) -> None:
        """Iteration, max_iter and error of a ``"programming_progress"`` event."""
        self.progress.max = max(1, int(progress["max_iter"]))
        self.progress.value = min(int(progress["iteration"]), self.progress.max)
        self.progress_label.value = (
            f"iteration {progress['iteration']} / {progress['max_iter']}, "
            f"error {progress['error']:.3g}"
        )

    def show_done(self, report: ProgrammingReport) -> None:
        """A full bar whose colour says whether the tolerance was reached."""
        self.progress.value = self.progress.max
        self.progress.bar_style = "success" if report.converged else "warning"
        text = (f"{'converged' if report.converged else 'not converged'} after "
                f"{report.iterations} iterations, error {report.error:.3g}")
        if report.verify_reads > 1:
            text += (f" (verify: {report.verify_reads} reads averaged, noise floor "
                     f"{report.noise_floor:.2g})")
        if report.reason.startswith("stalled"):
            text += f" - {report.reason}"
        self.progress_label.value = text

    def show_noise_programmed(self) -> None:
        """A full bar: the tile was programmed through its noise model."""
        self.progress.max = 1
        self.progress.value = 1
        self.progress.bar_style = "success"
        self.progress_label.value = "programmed with the noise model"
