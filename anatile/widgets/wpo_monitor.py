"""WPOMonitor: a live view of a Weight Programming Optimizer run, with Start/Stop."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from anatile.inference import CustomPairConductanceConverter
from anatile.widgets._base import AnatileWidget
from anatile.widgets._plots import (
    format_readouts,
    format_seconds,
    warm_up_custom_pair_curves,
)
from anatile.widgets._wpo_figures import LossFigure, StrategyFigure
from anatile.wpo import events as ev
from anatile.wpo.loss import tnmse_from_loss
from anatile.wpo.optimizer import WeightProgrammingOptimizer
from anatile.wpo.options import stop_criterion

__all__ = ["WPOMonitor"]

STATUS_INTERVAL_S = 0.25
#: the figures redraw at least this often during a run (while generations arrive).
MAX_FRAME_INTERVAL_S = 1.0
#: default rest between the end of one redraw and the start of the next: with a frame's
#: render this gives about 1.2 frames per second, the ≥ 1 per second bar with margin.
MIN_FRAME_INTERVAL_S = 0.8


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
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._active = False  # between start() and the end of the run
        self._status_at = -float("inf")
        self.loss_panel = self._panel("loss", (5.6, 3.2), self._update_loss)
        self.loss_figure = LossFigure(self.loss_panel)
        self.loss_figure.set_early_stop(self._early_stop())
        self.g_panel = self._panel("g", (5.0, 3.2), self._update_g)
        self.g_figure = StrategyFigure(self.g_panel, optimizer.g_max, len(optimizer.f_lst))
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

    def _early_stop(self) -> bool:
        """Whether the run stops at the target (the default ``callback``)."""
        return self.optimizer.options.callback is stop_criterion

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
        self.loss_figure.reset()
        self.loss_figure.set_early_stop(self._early_stop())
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
            new = self._losses[len(self._band):n]
            if new and len({x.size for x in new}) == 1 and all(np.isfinite(x).all()
                                                               for x in new):
                # the usual case, one call for all new generations (a frame brings dozens)
                rows = np.percentile(np.stack(new), [10, 90], axis=1).T
                self._band.extend((float(lo), float(hi)) for lo, hi in rows)
            else:
                for losses in new:
                    finite = losses[np.isfinite(losses)]
                    lo, hi = (np.percentile(finite, [10, 90]) if finite.size
                              else (np.nan, np.nan))
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
        base = self.baseline
        t0 = base.elapsed_s if base is not None else 0.0
        pace = (events[-1].generation / max(events[-1].elapsed_s - t0, 1e-9)
                if events else 0.0)
        self.loss_figure.show(gens, best, band,
                              None if base is None else (base.baseline_tnmse,
                                                         base.target_tnmse),
                              self.optimizer.options.maxiter, pace, self.running)
        self._set_status(self._state_word())
        return None

    def _state_word(self) -> str:
        if self.running:
            return "stopping" if self._stop_requested.is_set() else "running"
        if self.finished is not None or self.history:
            return "stopped" if self._stop_requested.is_set() else "finished"
        return "idle"

    def _update_g(self) -> bool | None:
        return self.g_figure.show(self.history[-1] if self.history else None)

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
