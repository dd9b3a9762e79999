"""The search itself: scipy's differential evolution with a generation monitor.

:class:`GenerationMonitor` is scipy's ``callback(intermediate_result)``: it records one
:class:`~anatile.wpo.result.GenerationRecord` per generation, emits
:class:`~anatile.wpo.events.GenerationFinished` and decides whether to stop (a subscriber,
:meth:`~anatile.wpo.WeightProgrammingOptimizer.request_stop`, or the ``callback`` option).
:func:`differential_evolution_search` runs the solver on the batched or the per-candidate
objective.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult, differential_evolution

from anatile.events import EventHub
from anatile.wpo.encoding import denormalize
from anatile.wpo.events import GenerationFinished
from anatile.wpo.loss import BatchedObjective, LossContext, loss_fxn, tnmse_from_loss
from anatile.wpo.options import WPOOptions
from anatile.wpo.problem import WPOProblem
from anatile.wpo.result import GenerationRecord

__all__ = ["GenerationMonitor", "differential_evolution_search", "elapsed_since"]

_log = logging.getLogger(__name__)


class GenerationMonitor:
    """scipy's generation callback: history, events and the decision to stop.

    Args:
        source: the optimizer (the ``source`` of the events).
        events: the hub the events go to.
        problem: the problem (its search space decodes the best point).
        options: the options (``callback``, ``disp``, ``maxiter``, ``loss_margin``).
        loss_baseline: the baseline TNMSE of this run.
        stop: the optimizer's stop flag (set by ``request_stop``).
        clock: seconds since the run started.
        objective: the batched objective, told the current population (paired selection).

    Attributes:
        history: the records so far.
        stopped_by_user: a subscriber or the stop flag ended the run.
        stopped_by_callback: the ``callback`` option ended the run.
    """

    def __init__(self, source: Any, events: EventHub, problem: WPOProblem,
                 options: WPOOptions, loss_baseline: float, stop: threading.Event,
                 clock: Callable[[], float], objective: BatchedObjective | None) -> None:
        self.source = source
        self.events = events
        self.problem = problem
        self.options = options
        self.loss_baseline = loss_baseline
        self.stop = stop
        self.clock = clock
        self.objective = objective
        self.history: list[GenerationRecord] = []
        self.stopped_by_user = False
        self.stopped_by_callback = False
        self._search_start = clock()

    def __call__(self, intermediate_result: Any) -> bool:
        opts = self.options
        nit = int(intermediate_result.nit)
        fun = float(intermediate_result.fun)
        f_lst, g_lst = denormalize(np.asarray(intermediate_result.x), self.problem.space)
        best_tnmse = float(tnmse_from_loss(fun, self.loss_baseline, opts.loss_margin))
        elapsed = self.clock()
        losses = np.array(intermediate_result.population_energies, dtype=np.float64, copy=True)
        if self.objective is not None:
            self.objective.observe(intermediate_result.population, losses)
        per_gen = (elapsed - self._search_start) / max(nit, 1)
        eta = per_gen * max(opts.maxiter - nit, 0)
        self.history.append(GenerationRecord(nit, fun, best_tnmse,
                                             float(np.median(losses)), elapsed))
        if opts.disp:
            _log.info("generation %d: best loss %.6f (TNMSE %.6g), %.1f s", nit, fun,
                      best_tnmse, elapsed)
        stop = self.events.emit(GenerationFinished(
            source=self.source, generation=nit, best_loss=fun, population_losses=losses,
            best_f_lst=f_lst, best_g_lst=g_lst, best_tnmse=best_tnmse, elapsed_s=elapsed,
            eta_s=eta,
        ))
        if self.stop.is_set():
            stop = True
        if stop:
            self.stopped_by_user = True
        if opts.callback is not None:
            try:
                if opts.callback(intermediate_result=intermediate_result) is True:
                    self.stopped_by_callback = True
            except StopIteration:
                self.stopped_by_callback = True
        return stop or self.stopped_by_callback


def differential_evolution_search(
    objective: BatchedObjective | LossContext,
    bounds: tuple[tuple[float, float], ...],
    options: WPOOptions,
    monitor: GenerationMonitor,
    x0: np.ndarray | None,
) -> tuple[OptimizeResult, int]:
    """Run :func:`scipy.optimize.differential_evolution` on the search's objective.

    Args:
        objective: the batched objective (whole population per call, ``vectorized``) or
            the context of the per-candidate loss :func:`~anatile.wpo.loss.loss_fxn`
            (``workers`` processes).
        bounds: the unit hypercube.
        options: differential-evolution settings (``strategy``, ``popsize``, ``maxiter``,
            ``tol``, ``atol``, ``mutation``, ``recombination``, ``init``, ``seed``).
        monitor: the generation callback.
        x0: a point put into the initial population (scipy's ``x0``: it replaces the first
            member of the ``init`` sampling), e.g. the baseline strategy; or None.

    Returns:
        scipy's result and the number of candidate evaluations.
    """
    opts = options
    common: dict[str, Any] = dict(
        callback=monitor, strategy=opts.strategy, maxiter=opts.maxiter, popsize=opts.popsize,
        tol=opts.tol, atol=opts.atol, mutation=opts.mutation,
        recombination=opts.recombination, rng=opts.seed, disp=False, polish=False,
        init=opts.init, x0=x0,
    )
    if isinstance(objective, BatchedObjective):
        res = differential_evolution(objective, bounds, vectorized=True, updating="deferred",
                                     **common)
        return res, objective.n_candidates
    res = differential_evolution(
        loss_fxn, bounds, args=(objective,), workers=opts.workers,
        updating="immediate" if opts.workers == 1 else "deferred", **common)
    return res, int(res.nfev)


def elapsed_since(start: float) -> Callable[[], float]:
    """A clock: seconds since ``start`` (a ``time.perf_counter()`` value)."""
    return lambda: time.perf_counter() - start
