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
    log_range,
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
        min_interval: minimum seconds between two redraws (0.5: a cheap frame twice a second).
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

    def __init__(self, optimizer: Any, min_interval: float = 0.5, max_duty: float = 0.03,
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
        self._band: list[tuple[float, float]] = []
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
        # labelled ticks at 1, 2, 5 × 10^k: the zoomed range is often within one decade
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
        self.g_panel.add_live(self._g_ax.set_title(
            "best strategy: waiting for the first generation", fontsize=9))
        self._g_ax.set(xlim=(-1.05, 1.05), autoscale_on=False)  # ylim: _update_g, rounded
        self._g_ax.grid(alpha=0.3)
        self._g_lines: list[Any] = []
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
        self._band.clear()
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
        if isinstance(event, ev.OptimizerStarted):
            self.started = event
        elif isinstance(event, ev.BaselineMeasured):
            self.baseline = event
            self._invalidate("loss")
        elif isinstance(event, ev.GenerationFinished):
            losses = np.asarray(event.population_losses, dtype=np.float64).reshape(-1)
            finite = losses[np.isfinite(losses)]
            lo, hi = (np.percentile(finite, [10, 90]) if finite.size else (np.nan, np.nan))
            self._band.append((float(lo), float(hi)))
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
        if self.baseline is not None:
            items["baseline TNMSE"] = f"{self.baseline.baseline_tnmse:.4g}"
            items["target TNMSE"] = f"{self.baseline.target_tnmse:.4g}"
        self.status.value = format_readouts(items)

    def population_tnmse_band(self) -> np.ndarray:
        """The population's 10–90 % TNMSE per generation, ``[n_generations, 2]``."""
        band = np.asarray(self._band[: len(self.history)], dtype=np.float64).reshape(-1, 2)
        if self.baseline is None:
            return np.full_like(band, np.nan)
        return np.asarray(tnmse_from_loss(band, self.baseline.baseline_tnmse,
                                          self.optimizer.options.loss_margin))

    def _update_loss(self) -> None:
        events = list(self.history)
        gens = np.asarray([e.generation for e in events], dtype=np.float64)
        best = np.asarray([e.best_tnmse for e in events], dtype=np.float64)
        band = self.population_tnmse_band()[: len(events)]
        self._best_line.set_data(gens, best)
        if len(gens) and np.isfinite(band).all():
            self._band_patch.set_xy(np.concatenate([np.c_[gens, band[:, 1]],
                                                    np.c_[gens[::-1], band[::-1, 0]]]))
        else:
            self._band_patch.set_xy(np.zeros((0, 2)))
        ax = self._loss_ax
        values = np.concatenate([best, band.reshape(-1)])
        if self.baseline is not None:
            b, target = self.baseline.baseline_tnmse, self.baseline.target_tnmse
            self._baseline_line.set_ydata([b, b])
            self._target_line.set_ydata([target, target])
            values = np.append(values, [b, target])
        else:
            self._baseline_line.set_ydata([np.nan, np.nan])
            self._target_line.set_ydata([np.nan, np.nan])
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            lo, hi = float(values.min()), float(values.max())
            if self.baseline is not None:  # the band's top may be clipped: best vs baseline
                top = 5.0 * self.baseline.baseline_tnmse  # is what must be read
                hi = min(hi, max([top, *best[np.isfinite(best)].tolist()]))
            ax.set_ylim(*log_range(lo / 1.15, hi * 1.15))
        else:
            ax.set_ylim(0.01, 1.0)
        # rounded up (1, 2, 5, 10, …): the axes stay while generations arrive
        ax.set_xlim(0, nice_ceil(max(1.0, float(gens.max()) if len(gens) else 1.0),
                                 (1.0, 2.0, 5.0, 10.0)))
        self._set_status(self._state_word())

    def _state_word(self) -> str:
        if self.running:
            return "stopping" if self._stop_requested.is_set() else "running"
        if self.finished is not None or self.history:
            return "stopped" if self._stop_requested.is_set() else "finished"
        return "idle"

    def _update_g(self) -> bool | None:
        last_key = None
        if self.history:
            last = self.history[-1]
            last_key = (tuple(last.best_f_lst), tuple(map(tuple, last.best_g_lst)))
            if last_key == getattr(self, "_g_drawn", None):
                return False  # the best strategy did not change: no new frame
        self._g_drawn = last_key
        if not self.history:
            self._drop_g_lines()
            self._g_ax.set_title("best strategy: waiting for the first generation",
                                 fontsize=9)
            return None
        last = self.history[-1]
        conv = CustomPairConductanceConverter(
            list(last.best_f_lst), [list(row) for row in last.best_g_lst],
            invertibility_test=False,
        )
        w, gs = conductance_curves(conv)
        if len(self._g_lines) != len(gs):
            panel = self.g_panel
            self._drop_g_lines()
            self._g_lines = [
                panel.add_live(self._g_ax.plot(w, g, label=lab, **device_style(i, len(gs)))[0])
                for i, (lab, g) in enumerate(zip(conv.device_names, gs, strict=True))
            ]
            panel.add_sticky(self._g_ax.legend(fontsize=7, loc="upper center"))
        else:
            for line, g in zip(self._g_lines, gs, strict=True):
                line.set_data(w, g)
        top = max((float(np.nanmax(g)) for g in gs if np.isfinite(g).any()), default=1.0)
        self._g_ax.set_ylim(0.0, nice_ceil(top * 1.05))
        f_txt = ", ".join(f"{f:.3g}" for f in last.best_f_lst)
        self._g_ax.set_title(f"best strategy (gen {last.generation}), f = [{f_txt}]", fontsize=9)
        return None

    def _drop_g_lines(self) -> None:
        """Remove the g(w) curves and their legend (a new run, or another device count)."""
        for line in self._g_lines:
            self.g_panel.live.remove(line)
            line.remove()
        self._g_lines = []
        legend = self._g_ax.get_legend()
        if legend is not None:
            self.g_panel.sticky.remove(legend)
            legend.remove()

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
