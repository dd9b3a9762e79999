"""The Weight Programming Optimizer (Mackin et al., Nature Communications 13, 3765, 2022).

Differential evolution over a unit hypercube that encodes a conductance programming
strategy (:mod:`anatile.wpo.encoding`), minimizing the time-averaged normalized mean squared
error of the weights after programming noise, drift, read noise and drift compensation,
relative to a baseline converter.

:class:`WeightProgrammingOptimizer` is aihwkit's public surface over parts shaped like
scipy's solver: the problem (:mod:`~anatile.wpo.problem`), the objective
(:mod:`~anatile.wpo.objective`), the solver (:mod:`~anatile.wpo.solver`), the polish and
validation steps (:mod:`~anatile.wpo.polish`) and the result (:mod:`~anatile.wpo.result`),
configured by :class:`~anatile.wpo.options.WPOOptions`.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from anatile.config.rpu_config import InferenceRPUConfig
from anatile.events import EventHub
from anatile.inference import (
    CustomPairConductanceConverter,
    DualPairConductanceConverter,
    NPairConductanceConverter,
    SinglePairConductanceConverter,
)
from anatile.wpo.batched import BatchedTNMSE
from anatile.wpo.encoding import denormalize, generate_bounds
from anatile.wpo.events import BaselineMeasured, OptimizerFinished, OptimizerStarted
from anatile.wpo.loss import BatchedObjective, LossContext, tnmse_from_loss
from anatile.wpo.objective import WPOObjective
from anatile.wpo.options import WPOOptions
from anatile.wpo.polish import polish, validate
from anatile.wpo.problem import WPOProblem
from anatile.wpo.result import GenerationRecord, WPOResult
from anatile.wpo.solver import GenerationMonitor, differential_evolution_search, elapsed_since

__all__ = ["GenerationRecord", "WPOResult", "WeightProgrammingOptimizer"]

_log = logging.getLogger(__name__)


class WeightProgrammingOptimizer:
    """Search the conductance programming strategy that keeps the weights most faithful
    over time, with differential evolution.

    The loss is ``(TNMSE − baseline) / baseline + loss_margin`` where TNMSE is the
    time-averaged normalized mean squared error of a test layer
    (``max_input_size × 20`` weights drawn from ``weights``) under programming noise, drift,
    read noise and drift compensation, averaged over ``t_steps``; ``baseline`` is the
    TNMSE of ``g_converter_baseline``. By default the whole population is evaluated as one
    batched tensor computation (see :mod:`anatile.wpo.batched`).

    Every :meth:`run_optimizer` restarts the random streams from ``seed``: a second run on
    the same optimizer (e.g. Start again after Stop) reproduces the first one.

    Args:
        weights: the (unitless) weights whose distribution the strategy is tuned for.
        f_lst: significance factor per conductance pair; ``None`` entries are optimized
            in ``[f_min, f_max]`` (e.g. ``[None, None]``), numbers stay fixed.
        rpu_config: an :class:`~anatile.config.InferenceRPUConfig` (noise model and drift
            compensation); it is deep-copied and never modified.
        t_steps: inference times (s) the error is averaged over.
        g_converter_baseline: the converter to beat: ``SinglePair``, ``DualPair``,
            ``NPair`` or ``CustomPair`` (e.g. a previous optimization result); its
            ``g_min``/``g_max`` are used for the search.
        symmetric: one strategy mirrored for negative and positive weights (halves the
            dimensions); False optimizes both signs independently.
        **kwargs: options, see :class:`~anatile.wpo.options.WPOOptions` (``popsize``,
            ``maxiter``, ``seed``, ``loss_margin``, ``baseline_iterations``, ``device``...).

    Attributes:
        options: the typed options.
        problem: the checked :class:`~anatile.wpo.problem.WPOProblem`.
        objective: the :class:`~anatile.wpo.objective.WPOObjective`.
        rpu_config: a copy of the caller's configuration; after a run its noise model
            holds the optimized converter.
        search_rpu_config: the copy the search runs on (learned output scales off, exact
            drift-compensation readout with ``perfect_readout``, ω = 0 and the noisy
            readout with ``aihwkit_objective``).
        events: :class:`~anatile.events.EventHub` of the progress events.
        result: the :class:`WPOResult` after a run, else None.
        loss_baseline: baseline TNMSE (``inf`` until measured).
        best_loss: TNMSE of the best strategy after a run (``inf`` before).
        test_weights: the test weights, tile layout ``(out_features, in_features)``.
        space: the :class:`~anatile.wpo.encoding.SearchSpace`.
        generator: the noise generator of the batched loss (restarted by each run).

    Raises:
        ConfigError: for unknown or invalid keyword options (naming them).
        TypeError: for an unsupported baseline converter or a non-inference ``rpu_config``.
        ValueError: for empty/non-finite weights, a bad ``f_lst`` or bad ``t_steps``.

    Example:
        >>> import torch
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.inference import DualPairConductanceConverter
        >>> wpo = WeightProgrammingOptimizer(
        ...     torch.randn(1000) * 0.1, [None, None], InferenceRPUConfig(),
        ...     [1.0, 3600.0, 86400.0], DualPairConductanceConverter([1.0, 1.0]),
        ...     popsize=10, maxiter=5, baseline_iterations=5, polish=False)
        >>> converter, success = wpo.run_optimizer()  # doctest: +SKIP
    """

    def __init__(
        self,
        weights: Tensor,
        f_lst: list[float | None],
        rpu_config: InferenceRPUConfig,
        t_steps: Sequence[float],
        g_converter_baseline: (SinglePairConductanceConverter | DualPairConductanceConverter
                               | NPairConductanceConverter | CustomPairConductanceConverter),
        symmetric: bool = True,
        **kwargs: Any,
    ) -> None:
        self.options = WPOOptions.from_kwargs(**kwargs)
        self.problem = WPOProblem.build(weights, f_lst, rpu_config, t_steps,
                                        g_converter_baseline, symmetric, self.options)
        self.objective = WPOObjective(self.problem, self.options)
        problem = self.problem
        self.f_lst: list[float | None] = list(problem.f_lst)
        # the caller's config is never touched; the search runs on a second copy
        self.rpu_config = copy.deepcopy(rpu_config)
        self.events = EventHub()
        self.loss_baseline = math.inf
        self.best_loss = math.inf
        self.result: WPOResult | None = None
        self.generator = self._new_generator()
        self._stop = threading.Event()
        self._clock = elapsed_since(time.perf_counter())

    # ------------------------------------------------------------------ the problem
    t_steps = property(lambda self: list(self.problem.t_steps),
                       doc="Inference times (s) the error is averaged over.")
    symmetric = property(lambda self: self.problem.symmetric,
                         doc="One strategy mirrored for both signs.")
    search_rpu_config = property(lambda self: self.problem.search_rpu_config,
                                 doc="The configuration the search runs on.")
    noise_model = property(lambda self: self.problem.search_rpu_config.noise_model,
                           doc="The noise model of the search.")
    g_converter_baseline = property(lambda self: self.problem.g_converter_baseline,
                                    doc="The converter to beat (a copy).")
    g_min = property(lambda self: self.problem.g_min, doc="Smallest conductance (µS).")
    g_max = property(lambda self: self.problem.g_max, doc="Largest conductance (µS).")
    g_err = property(lambda self: self.problem.space.g_err,
                     doc="Allowed over/under-programming (µS).")
    device = property(lambda self: self.problem.device, doc="Device of the batched loss.")
    test_weights = property(lambda self: self.problem.test_weights,
                            doc="The test layer ``(out_features, in_features)``.")
    test_in_features = property(lambda self: self.problem.test_weights.shape[1],
                                doc="Inputs of the test layer.")
    test_out_features = property(lambda self: self.problem.test_weights.shape[0],
                                 doc="Outputs of the test layer.")
    max_abs_weight_unitless = property(lambda self: self.problem.max_abs_weight_unitless,
                                       doc="``max|test_weights|``.")
    weights_discretized_unitless = property(
        lambda self: self.problem.weights_discretized_unitless,
        doc="The grid weights of a strategy (float64).")
    space = property(lambda self: self.problem.space, doc="The search space.")

    def _new_generator(self) -> torch.Generator:
        return torch.Generator(self.problem.device).manual_seed(self.options.seed)

    # ------------------------------------------------------------------ helpers
    def request_stop(self) -> None:
        """Ask the optimization to stop after the current generation (thread-safe).

        A request made before :meth:`run_optimizer` stops that run after its first
        generation; the request is cleared when a run ends.
        """
        self._stop.set()

    def generate_hop_bounds(self) -> tuple[tuple[float, float], ...]:
        """Bounds of the differential-evolution hypercube.

        Returns:
            ``(0.0, 1.0)`` for each dimension: free f factors, ``k_w`` (unless
            ``use_max_kw``), then ``(2·P − 1)`` blocks of ``nbins`` (symmetric) or
            ``2·nbins − 1`` coordinates.
        """
        return generate_bounds(self.problem.space)

    def loss_context(self, get_baseline: bool = False) -> LossContext:
        """The picklable context of the per-candidate loss."""
        return self.objective.loss_context(get_baseline, self.loss_baseline)

    def batched_engine(self) -> BatchedTNMSE:
        """The batched TNMSE evaluator of this optimizer (built on first use).

        Raises:
            TypeError: if the noise model or drift compensation is not supported by the
                batched path.
            ConfigError: if the readout is not perfect (``perfect_readout=False`` with
                forward IO noise), which the batched path does not model.
        """
        return self.objective.engine

    def baseline_point(self) -> np.ndarray | None:
        """The baseline converter encoded as a hypercube point, or None if it has a
        different number of pairs than ``f_lst`` (see :meth:`WPOProblem.baseline_point`)."""
        return self.problem.baseline_point()

    def validate_point(self, x: np.ndarray, repeats: int) -> float:
        """Mean TNMSE of hypercube point ``x`` over ``repeats`` independent noise draws
        (batched path; draws from the optimizer's generator)."""
        return validate(self.objective, x, repeats, self.generator)

    # ------------------------------------------------------------------ the steps
    def get_loss_baseline(self) -> float:
        """Average TNMSE of ``g_converter_baseline`` over ``baseline_iterations`` runs.

        Each run re-programs and drifts the test weights at every time step with
        independent noise (batched path: all runs in one tensor computation; reference
        path: one test tile per run).

        Returns:
            The baseline TNMSE (also stored in ``loss_baseline``).
        """
        value = self.objective.baseline(self.options.baseline_iterations, self.generator)
        self.loss_baseline = value
        _log.info("loss baseline = %f (%s)", value, type(self.g_converter_baseline).__name__)
        return value

    def differential_weight_evolution(self) -> tuple[CustomPairConductanceConverter, bool]:
        """Run differential evolution (measuring the baseline first if needed), then the
        polish and validation steps.

        To widen the search, increase ``popsize`` together with ``mutation`` and lower
        ``recombination``.

        Returns:
            ``(converter, success)``: the best strategy as a custom-pair converter and
            whether it beats the baseline by the margin (best loss < 0).
        """
        opts = self.options
        if not math.isfinite(self.loss_baseline):
            self.get_loss_baseline()
        bounds = self.generate_hop_bounds()
        _log.info("hypercube dimensions = %d", len(bounds))
        batched = (BatchedObjective(self.space, self.objective.engine, self.generator,
                                    self.loss_baseline, opts.loss_margin,
                                    paired=opts.paired_selection)
                   if opts.use_batched else None)
        monitor = GenerationMonitor(self, self.events, self.problem, opts, self.loss_baseline,
                                    self._stop, self._clock, batched)
        x0 = self.baseline_point() if opts.seed_with_baseline else None
        res, n_eval = differential_evolution_search(
            batched if batched is not None else self.loss_context(), bounds, opts, monitor, x0)
        x_best = np.asarray(res.x, dtype=np.float64)
        fun = float(res.fun)
        message = str(res.message)
        polished = False
        if (opts.polish and opts.use_batched and not monitor.stopped_by_user
                and opts.polish_maxiter > 0):
            x_best, fun, polished = polish(self.objective, x_best, fun, bounds,
                                           self.loss_baseline, self.generator)
            if polished:
                message += "; polished"
        f_lst, g_lst = denormalize(x_best, self.space)
        converter = self.problem.converter(f_lst, g_lst)
        validated = None
        if opts.use_batched and opts.validation_iterations > 0:
            validated = self.validate_point(x_best, opts.validation_iterations)
        self.best_loss = float(tnmse_from_loss(fun, self.loss_baseline, opts.loss_margin))
        self.result = WPOResult(
            converter=converter, success=bool(fun < 0.0), best_tnmse=self.best_loss,
            baseline_tnmse=self.loss_baseline, history=list(monitor.history),
            elapsed_s=self._clock(), stopped_by_user=monitor.stopped_by_user,
            stopped_by_callback=monitor.stopped_by_callback, best_loss=fun,
            f_lst=list(f_lst), g_lst=[list(r) for r in g_lst], x=x_best,
            n_generations=int(res.nit), n_evaluations=n_eval, message=message,
            polished=polished, validated_tnmse=validated,
            kernel=self.batched_engine().kernel_name if opts.use_batched else "per-candidate",
        )
        return converter, self.result.success

    def run_optimizer(self) -> tuple[CustomPairConductanceConverter, bool]:
        """Measure the baseline, run the search and report.

        The random streams restart from ``seed`` (a rerun reproduces the run); a
        :meth:`request_stop` made before the call is honoured after the first generation.

        Emits :class:`~anatile.wpo.events.OptimizerStarted`,
        :class:`~anatile.wpo.events.BaselineMeasured`, one
        :class:`~anatile.wpo.events.GenerationFinished` per generation and
        :class:`~anatile.wpo.events.OptimizerFinished`.

        Returns:
            ``(converter, success)``; the full :class:`WPOResult` is in :attr:`result`.
        """
        opts = self.options
        self.generator = self._new_generator()
        self._clock = elapsed_since(time.perf_counter())
        try:
            bounds = self.generate_hop_bounds()
            self.events.emit(OptimizerStarted(
                source=self, n_dims=len(bounds), n_candidates=opts.popsize * len(bounds),
                maxiter=opts.maxiter, vectorized=opts.use_batched, device=str(self.device),
            ))
            baseline = self.get_loss_baseline()
            self.events.emit(BaselineMeasured(
                source=self, baseline_tnmse=baseline,
                target_tnmse=baseline * (1.0 - opts.loss_margin),
                converter=type(self.g_converter_baseline).__name__, elapsed_s=self._clock(),
            ))
            converter, success = self.differential_weight_evolution()
        finally:
            self._stop.clear()
        # a configuration ready for inference: the caller's settings, optimized converter
        self.rpu_config.noise_model.g_converter = copy.deepcopy(converter)
        self.f_lst = list(converter.f_lst)
        assert self.result is not None
        self.result.elapsed_s = self._clock()
        self.events.emit(OptimizerFinished(source=self, result=self.result))
        return converter, success
