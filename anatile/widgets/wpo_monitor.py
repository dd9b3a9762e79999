"""WPOMonitor: a live view of a Weight Programming Optimizer run, with Start/Stop."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.patches import Polygon
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from anatile.analysis.metrics import TNMSE
from anatile.inference import CustomPairConductanceConverter
from anatile.widgets._base import AnatileWidget, tight_layout
from anatile.widgets._plots import (
    axis_label,
    conductance_curves,
    device_style,
    few_ticks,
    format_readouts,
    format_seconds,
    nice_ceil,
    warm_up_custom_pair_curves,
)
from anatile.wpo import events as ev
from anatile.wpo.loss import tnmse_from_loss
from anatile.wpo.optimizer import WeightProgrammingOptimizer

__all__ = ["WPOMonitor"]

STATUS_INTERVAL_S = 0.25
#: the figures redraw at least this often during a run (while generations arrive).
MAX_FRAME_INTERVAL_S = 1.0
#: default rest between the end of one redraw and the start of the next: with a frame's
#: render this gives about 1.2 frames per second, the ≥ 1 per second bar with margin.
MIN_FRAME_INTERVAL_S = 0.8
#: during a run the generation axis reaches as far as the run gets in this many seconds
#: at its current pace (at most ``maxiter``): redrawing the axes (tick labels) costs about
#: ten frames, so the axis is widened that rarely.
X_HORIZON_S = 30.0
#: limits of the TNMSE axis are multiples of these in each decade (tick positions of the
#: log axis: both ends carry a label).
LOG_STEPS = (1.0, 2.0, 5.0, 10.0)
G_TITLE = "g(w) of the best strategy so far"


class WPOMonitor(AnatileWidget):
    """Live view of a :class:`~anatile.wpo.WeightProgrammingOptimizer` run.

    Shows the TNMSE per generation (the best strategy's, the population's 10–90 % band,
    the baseline strategy's TNMSE and the target ``baseline · (1 − loss_margin)`` below
    which the run may stop early), the g(w) curves of every device and the f factors of
    the current best strategy, the generation counter, elapsed time and ETA (while
    running), and the run's seed and settings. **Start** clears the figures and runs the
    optimizer in a background thread, so the notebook stays usable; **Stop** ends the run
    at the next generation with the best strategy so far. Events come from
    ``optimizer.events``; nothing is computed here.

    Args:
        optimizer: a ``WeightProgrammingOptimizer``.
        min_interval: minimum seconds between the end of a redraw and the start of the
            next (0.8: about 1.2 frames per second).
        max_duty: the figures take at most about this fraction of the wall time (a render
            competes with the optimizer for the cores), but they redraw at least once per
            ``max_interval`` seconds while generations arrive.
        max_interval: longest gap between two figure redraws during a run (s).

    Raises:
        TypeError: if ``optimizer`` is not a ``WeightProgrammingOptimizer``.

    Attributes:
        history: one ``GenerationFinished`` event per finished generation, in order.
        baseline: the ``BaselineMeasured`` event, once the baseline is known.

    Example:
        >>> monitor = WPOMonitor(optimizer)   # doctest: +SKIP
        >>> monitor.start()                   # doctest: +SKIP
        >>> monitor.wait(); monitor.result    # doctest: +SKIP
        CustomPairConductanceConverter(...)
    """

    def __init__(self, optimizer: Any, min_interval: float = MIN_FRAME_INTERVAL_S,
                 max_duty: float = 0.03,
                 max_interval: float = MAX_FRAME_INTERVAL_S) -> None:
        if not isinstance(optimizer, WeightProgrammingOptimizer):
            raise TypeError(f"optimizer: expected a WeightProgrammingOptimizer, "
                            f"got {type(optimizer).__name__}")
        super().__init__(min_interval=min_interval, max_duty=max_duty,
                         max_interval=max_interval)
        self.optimizer = optimizer
        self.history: list[Any] = []
        self.started: Any = None
        self.baseline: Any = None
        self.finished: Any = None
        # per generation: its population's losses (set by the event callback) and their
        # 10–90 % band (computed on the redraw thread, see population_tnmse_band)
        self._losses: list[np.ndarray] = []
        self._band: list[tuple[float, float]] = []
        self._band_lock = threading.Lock()
        # the loss axes' limits of this run: they only widen while it runs (_loss_limits)
        self._x_top: float | None = None
        self._y_range: tuple[float, float] | None = None
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._active = False  # between start() and the end of the run
        self._status_at = -float("inf")
        self.loss_panel = self._panel("loss", (5.6, 3.2), self._update_loss)
        ax = self.loss_panel.figure.subplots()
        ax.set_xlabel("generation")
        ax.set_ylabel(axis_label(TNMSE), fontsize=8)
        ax.set_title("test-layer TNMSE: lower is better", fontsize=9)
        ax.set_yscale("log")  # early populations span orders of magnitude
        ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.grid(alpha=0.3)
        self._loss_ax = ax
        # live data over kept axes with rounded limits (_update_loss): see FigurePanel
        live = self.loss_panel.add_live
        self._band_patch = live(Polygon(np.zeros((0, 2)), closed=True, alpha=0.25, linewidth=0,
                                        color="#1f77b4", label="population 10–90 %"))
        ax.add_patch(self._band_patch)
        self._best_line = live(ax.plot([], [], color="#1f77b4", marker=".", label="best")[0])
        self._baseline_line = ax.axhline(np.nan, color="#7f7f7f", ls="--", label="baseline")
        self._target_line = ax.axhline(np.nan, color="#2ca02c", linestyle=":",
                                       label="target (early stop)")
        self.loss_panel.add_sticky(ax.legend(fontsize=8, loc="upper right"))
        tight_layout(self.loss_panel.figure)

        self.g_panel = self._panel("g", (5.0, 3.2), self._update_g)
        self._g_ax = self.g_panel.figure.subplots()
        self._g_ax.set(xlabel="weight / max|W|", ylabel="conductance (µS)")
        # a static title (kept frame pixels): the generation and f factors of the best
        # strategy are in the status line, and in the title of an exported figure
        self._g_ax.set_title(G_TITLE, fontsize=9)
        self.g_panel.prepare_export = self._g_export_title
        self._g_waiting = self.g_panel.add_live(self._g_ax.text(
            0.5, 0.5, "waiting for the first generation", transform=self._g_ax.transAxes,
            ha="center", va="center", fontsize=9, color="#7f7f7f"))
        # both axes fixed: the devices' conductance range (widened if a curve leaves it)
        self._g_ax.set(xlim=(-1.05, 1.05), ylim=(0.0, nice_ceil(1.05 * optimizer.g_max)),
                       autoscale_on=False)
        self._g_ax.grid(alpha=0.3)
        self._g_lines: list[Any] = []
        self._g_drawn: Any = None  # the best strategy the g(w) curves show
        # one empty curve per device from the start: the legend is part of the kept frame
        n_pairs = len(optimizer.f_lst)
        self._make_g_lines(CustomPairConductanceConverter(
            [1.0] * n_pairs, [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]] * n_pairs,
            invertibility_test=False).device_names)
        few_ticks([self._g_ax], 5)
        self._loss_ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        tight_layout(self.g_panel.figure)
        warm_up_custom_pair_curves()  # a one-time import, now rather than mid-run

        self.start_button = widgets.Button(description="Start", icon="play",
                                           button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True,
                                          button_style="danger")
        self.start_button.on_click(self._guarded(lambda _b: self.start()))
        self.stop_button.on_click(self._guarded(lambda _b: self.stop()))
        self.status = widgets.HTML()
        self.settings = widgets.HTML(self._settings_html())
        self.settings.add_class("anatile-wpo-settings")
        self._set_status("idle")
        self._subscribe(optimizer.events, self._on_event)
        self.export_box = self._export_controls()
        self.children = [
            widgets.HBox([self.start_button, self.stop_button]),
            self.status,
            self.settings,
            widgets.HBox([self.loss_panel.image, self.g_panel.image]),
            self.export_box,
            self._error_label,
            self.log_area,
        ]
        self.refresh("loss", "g")

    # -------------------------------------------------------------- control
    @property
    def running(self) -> bool:
        """Whether a run started by this monitor is in progress."""
        return self._active

    def start(self, background: bool = True) -> threading.Thread | None:
        """Run the optimizer (in a daemon thread unless ``background=False``).

        Returns:
            The thread, or None when run in the foreground.

        Raises:
            RuntimeError: if a run is already in progress.
        """
        if self.running:
            raise RuntimeError("the optimizer is already running")
        self._stop_requested.clear()
        self.history.clear()
        self._losses.clear()
        with self._band_lock:
            self._band.clear()
        self._x_top = self._y_range = None
        self.started = None
        self.baseline = None
        self.finished = None
        self._active = True
        self.start_button.disabled = True
        self.stop_button.disabled = False
        self.settings.value = self._settings_html()
        self._set_status("starting")
        self.refresh("loss", "g")  # the previous run's figures go now, not at generation 1
        if not background:
            self._run()
            return None
        self._thread = threading.Thread(target=self._run, name="anatile-wpo", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Ask the run to stop after the current generation (with the best so far)."""
        self._stop_requested.set()
        self.optimizer.request_stop()
        self._set_status("stopping")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends; returns False on timeout."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def result(self) -> CustomPairConductanceConverter | None:
        """The optimized converter once a run has finished (None before)."""
        res = self.optimizer.result
        return None if res is None else res.converter

    def _run(self) -> None:
        try:
            self.optimizer.run_optimizer()
        except Exception as exc:  # shown in the log area
            self._report(exc)
        finally:
            self._active = False
            # final frames first: a view that sees "finished" also has the last figures
            self.refresh("loss", "g")
            self.start_button.disabled = False
            self.stop_button.disabled = True
            self._set_status(self._state_word())

    # --------------------------------------------------------------- events
    def _on_event(self, event: Any) -> bool:
        try:
            self._record(event)
        except Exception as exc:  # shown in the log area
            self._report(exc)
        return self._stop_requested.is_set()

    def _record(self, event: Any) -> None:
        # runs on the optimizer's thread once per generation: O(1) work (the population's
        # percentiles and everything drawn are computed on the redraw thread)
        if isinstance(event, ev.OptimizerStarted):
            self.started = event
        elif isinstance(event, ev.BaselineMeasured):
            self.baseline = event
            self._set_status(self._state_word())
        elif isinstance(event, ev.GenerationFinished):
            losses = np.asarray(event.population_losses, dtype=np.float64).reshape(-1)
            self._losses.append(losses)
            self.history.append(event)
            # the status line is one trait update: live (≤ 4 per second) while the figures
            # follow at the throttled rate
            now = time.monotonic()
            if now - self._status_at >= STATUS_INTERVAL_S:
                self._status_at = now
                self._set_status(self._state_word())
            self._invalidate("loss", "g")
        elif isinstance(event, ev.OptimizerFinished):
            self.finished = event
            self._invalidate("loss", "g")

    # -------------------------------------------------------------- drawing
    def _settings_html(self) -> str:
        opt = self.optimizer
        opts = opt.options
        f_txt = ", ".join("free" if f is None else f"{f:.3g}" for f in opt.f_lst)
        t_txt = ", ".join(f"{t:.3g}" for t in opt.t_steps)
        weights = getattr(opt, "test_weights", None)
        layer = "–" if weights is None else "×".join(str(n) for n in weights.shape)
        return format_readouts({
            "seed": str(opts.seed),
            "popsize": str(opts.popsize),
            "maxiter": str(opts.maxiter),
            "f_lst": f"[{f_txt}]",
            "t_steps (s)": f"[{t_txt}]",
            "baseline": type(opt.g_converter_baseline).__name__.replace(
                "ConductanceConverter", ""),
            "loss_margin": f"{opts.loss_margin:g}",
            "test layer": layer,
        })

    def _set_status(self, state: str) -> None:
        last = self.history[-1] if self.history else None
        maxiter = self.optimizer.options.maxiter
        gen = "–" if last is None else f"{last.generation} / {maxiter}"
        items = {
            "state": state,
            "generation": gen,
            "elapsed": format_seconds(None if last is None else last.elapsed_s),
        }
        if state in ("running", "stopping", "starting"):  # no ETA once the run is over
            items["ETA"] = format_seconds(None if last is None else last.eta_s)
        items["best TNMSE"] = "–" if last is None else f"{last.best_tnmse:.4g}"
        items["best f"] = ("–" if last is None else
                           "[" + ", ".join(f"{f:.3g}" for f in last.best_f_lst) + "]")
        if self.baseline is not None:
            items["baseline TNMSE"] = f"{self.baseline.baseline_tnmse:.4g}"
            items["target TNMSE"] = f"{self.baseline.target_tnmse:.4g}"
        self.status.value = format_readouts(items)

    def population_tnmse_band(self) -> np.ndarray:
        """The population's 10–90 % TNMSE per generation, ``[n_generations, 2]``."""
        n = len(self.history)
        with self._band_lock:
            for losses in self._losses[len(self._band):n]:
                finite = losses[np.isfinite(losses)]
                lo, hi = np.percentile(finite, [10, 90]) if finite.size else (np.nan, np.nan)
                self._band.append((float(lo), float(hi)))
            band = np.asarray(self._band[:n], dtype=np.float64).reshape(-1, 2)
        if self.baseline is None:
            return np.full_like(band, np.nan)
        return np.asarray(tnmse_from_loss(band, self.baseline.baseline_tnmse,
                                          self.optimizer.options.loss_margin))

    def _update_loss(self) -> bool | None:
        events = list(self.history)
        if not events and self.baseline is not None and self.running:
            return False  # the baseline alone: it is drawn with the first generation
        gens = np.asarray([e.generation for e in events], dtype=np.float64)
        best = np.asarray([e.best_tnmse for e in events], dtype=np.float64)
        band = self.population_tnmse_band()[: len(events)]
        self._best_line.set_data(gens, best)
        if len(gens) and np.isfinite(band).all():
            self._band_patch.set_xy(np.concatenate([np.c_[gens, band[:, 1]],
                                                    np.c_[gens[::-1], band[::-1, 0]]]))
        else:
            self._band_patch.set_xy(np.zeros((0, 2)))
        if self.baseline is not None:
            b, target = self.baseline.baseline_tnmse, self.baseline.target_tnmse
            self._baseline_line.set_ydata([b, b])
            self._target_line.set_ydata([target, target])
        else:
            self._baseline_line.set_ydata([np.nan, np.nan])
            self._target_line.set_ydata([np.nan, np.nan])
        x_top, (y_lo, y_hi) = self._loss_limits(events, best)
        ax = self._loss_ax
        if ax.get_xlim() != (0.0, x_top):
            ax.set_xlim(0.0, x_top)
        if ax.get_ylim() != (y_lo, y_hi):
            ax.set_ylim(y_lo, y_hi)
            # labelled ticks at 1, 2, 5 × 10^k; within one decade also at 1.5, 3 and 7
            subs = (1.0, 2.0, 5.0) if y_hi / y_lo > 10.0 + 1e-9 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
            ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=subs))
        self._set_status(self._state_word())
        return None

    def _loss_limits(self, events: list[Any], best: np.ndarray
                     ) -> tuple[float, tuple[float, float]]:
        """Limits of the loss axes: ``(x_top, (y_lo, y_hi))``.

        They change rarely, as a new set of limits redraws the axes' tick labels (about ten
        frames' work). The generation axis reaches :data:`X_HORIZON_S` seconds ahead at the
        run's pace (at most ``maxiter``); the TNMSE axis spans the best TNMSE, the baseline
        and the target with 15 % margins, ends rounded outwards to 1, 2, 5 × 10^k. Both only
        widen while the run goes on; after it they fit the run. The population band is not
        fitted: its early spread runs off the top.
        """
        maxiter = float(self.optimizer.options.maxiter)
        last_gen = float(events[-1].generation) if events else 0.0
        if not self.running:
            x_top = min(maxiter, nice_ceil(max(1.0, last_gen), LOG_STEPS))
        elif self._x_top is not None and last_gen <= self._x_top:
            x_top = self._x_top
        else:
            t0 = self.baseline.elapsed_s if self.baseline is not None else 0.0
            pace = last_gen / max(events[-1].elapsed_s - t0, 1e-9) if events else 0.0
            x_top = min(maxiter, nice_ceil(max(1.0, last_gen + pace * X_HORIZON_S),
                                           LOG_STEPS))
        values = best[np.isfinite(best) & (best > 0)]
        if self.baseline is not None:
            values = np.append(values, [self.baseline.baseline_tnmse,
                                        self.baseline.target_tnmse])
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            # 1 / nice_ceil(1 / v) rounds down to 1, 2, 5 × 10^k (the steps' reciprocals)
            y_range = (1.0 / nice_ceil(1.15 / float(values.min()), LOG_STEPS),
                       nice_ceil(1.15 * float(values.max()), LOG_STEPS))
        else:
            y_range = (0.01, 1.0)
        if self.running and events:
            if self._y_range is not None:
                y_range = (min(y_range[0], self._y_range[0]),
                           max(y_range[1], self._y_range[1]))
            self._x_top, self._y_range = x_top, y_range
        return x_top, y_range

    def _state_word(self) -> str:
        if self.running:
            return "stopping" if self._stop_requested.is_set() else "running"
        if self.finished is not None or self.history:
            return "stopped" if self._stop_requested.is_set() else "finished"
        return "idle"

    def _update_g(self) -> bool | None:
        last = self.history[-1] if self.history else None
        key = None if last is None else (tuple(last.best_f_lst),
                                         tuple(map(tuple, last.best_g_lst)))
        if key == self._g_drawn and self.g_panel.image.value:
            return False  # the best strategy did not change: no new frame
        self._g_drawn = key
        self._g_waiting.set_visible(last is None)
        if last is None:
            for line in self._g_lines:
                line.set_data([], [])
            return None
        conv = CustomPairConductanceConverter(
            list(last.best_f_lst), [list(row) for row in last.best_g_lst],
            invertibility_test=False,
        )
        w, gs = conductance_curves(conv)
        if len(self._g_lines) != len(gs):  # another device count than the optimizer's
            self._make_g_lines(conv.device_names)
        for line, g in zip(self._g_lines, gs, strict=True):
            line.set_data(w, g)
        top = max((float(np.nanmax(g)) for g in gs if np.isfinite(g).any()), default=0.0)
        if top > self._g_ax.get_ylim()[1]:
            self._g_ax.set_ylim(0.0, nice_ceil(top * 1.05))
        return None

    def _make_g_lines(self, names: list[str]) -> None:
        """One (empty) live curve per device and their legend, replacing any before."""
        panel, ax = self.g_panel, self._g_ax
        for line in self._g_lines:
            panel.live.remove(line)
            line.remove()
        legend = ax.get_legend()
        if legend is not None:
            panel.sticky.remove(legend)
            legend.remove()
        self._g_lines = [panel.add_live(ax.plot([], [], label=name,
                                                **device_style(i, len(names)))[0])
                         for i, name in enumerate(names)]
        panel.add_sticky(ax.legend(fontsize=7, loc="upper center"))

    def _g_export_title(self, scale: float) -> None:
        """An exported g(w) figure names its generation and f factors in its title."""
        last = self.history[-1] if self.history else None
        if scale == 1.0 or last is None:
            self._g_ax.set_title(G_TITLE, fontsize=9)
        else:
            f_txt = ", ".join(f"{f:.3g}" for f in last.best_f_lst)
            self._g_ax.set_title(f"best strategy (generation {last.generation}), "
                                 f"f = [{f_txt}]", fontsize=9)

    def export_data(self, directory: str | Path, stem: str | None = None) -> list[Path]:
        """The run's history as CSV: generation, elapsed time, best TNMSE, the population's
        10–90 % TNMSE and the best strategy's f factors."""
        path = Path(directory) / f"{stem or type(self).__name__}_history.csv"
        band = self.population_tnmse_band()
        n_f = max((len(e.best_f_lst) for e in self.history), default=0)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["generation", "elapsed_s", "best_tnmse", "population_tnmse_p10",
                             "population_tnmse_p90", "best_loss",
                             *(f"f{i}" for i in range(n_f))])
            for e, (p10, p90) in zip(self.history, band, strict=True):
                writer.writerow([e.generation, f"{e.elapsed_s:.6g}", repr(float(e.best_tnmse)),
                                 repr(float(p10)), repr(float(p90)), repr(float(e.best_loss)),
                                 *(repr(float(f)) for f in e.best_f_lst)])
        return [path]
