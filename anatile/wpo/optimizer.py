"""The Weight Programming Optimizer (Mackin et al., Nature Communications 13, 3765, 2022).

Differential evolution over a unit hypercube that encodes a conductance programming
strategy (:mod:`anatile.wpo.encoding`), minimizing the time-averaged normalized mean squared
error of the weights after programming noise, drift, read noise and drift compensation,
relative to a baseline converter.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.optimize import differential_evolution, minimize
from torch import Size, Tensor

from anatile.config.rpu_config import InferenceRPUConfig
from anatile.events import EventHub
from anatile.inference import (
    CustomPairConductanceConverter,
    DualPairConductanceConverter,
    NPairConductanceConverter,
    SinglePairConductanceConverter,
)
from anatile.wpo.batched import BatchedTNMSE, PCMPhysics, compensation_kind
from anatile.wpo.encoding import SearchSpace, decode_batch, denormalize, encode, generate_bounds
from anatile.wpo.events import (
    BaselineMeasured,
    GenerationFinished,
    OptimizerFinished,
    OptimizerStarted,
)
from anatile.wpo.loss import BatchedObjective, LossContext, loss_fxn, loss_rpu_config
from anatile.wpo.options import WPOOptions
from anatile.wpo.sampling import downsample_weight_distribution

__all__ = ["GenerationRecord", "WPOResult", "WeightProgrammingOptimizer"]

_log = logging.getLogger(__name__)

_BASELINE_TYPES = (
    SinglePairConductanceConverter,
    DualPairConductanceConverter,
    NPairConductanceConverter,
    CustomPairConductanceConverter,
)


@dataclass(frozen=True)
class GenerationRecord:
    """Summary of one generation (kept in :attr:`WPOResult.history`).

    Attributes:
        generation: 1-based generation number.
        best_loss: best relative loss so far.
        best_tnmse: TNMSE of the best strategy so far.
        median_loss: median population loss.
        elapsed_s: seconds since the run started.
    """

    generation: int
    best_loss: float
    best_tnmse: float
    median_loss: float
    elapsed_s: float


@dataclass
class WPOResult:
    """Outcome of :meth:`WeightProgrammingOptimizer.run_optimizer`.

    Attributes:
        converter: the optimized :class:`~anatile.inference.CustomPairConductanceConverter`.
        success: True when the best loss is negative (baseline beaten by the margin).
        best_tnmse: TNMSE of the returned strategy (as estimated during the search).
        baseline_tnmse: TNMSE of the baseline converter.
        history: one :class:`GenerationRecord` per generation.
        elapsed_s: wall time of the run (s).
        stopped_by_user: a subscriber or :meth:`~WeightProgrammingOptimizer.request_stop`
            ended the run early (the polish is then skipped).
        stopped_by_callback: the ``callback`` option (by default :func:`stop_criterion`:
            the margin was reached) ended the run early.
        best_loss: relative loss of the returned strategy.
        f_lst: its f factors.
        g_lst: its conductance lists (µS).
        x: its hypercube point.
        n_generations: generations run.
        n_evaluations: candidate evaluations (baseline not included).
        message: scipy's termination message (plus the polish outcome).
        polished: whether the polish improved the strategy.
        validated_tnmse: mean TNMSE of the returned strategy re-measured on fresh,
            independent noise (``validation_iterations`` runs, batched path), free of the
            selection bias of ``best_tnmse``; None when not measured.
    """

    converter: CustomPairConductanceConverter
    success: bool
    best_tnmse: float
    baseline_tnmse: float
    history: list[GenerationRecord] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped_by_user: bool = False
    stopped_by_callback: bool = False
    best_loss: float = math.inf
    f_lst: list[float] = field(default_factory=list)
    g_lst: list[list[float]] = field(default_factory=list)
    x: np.ndarray | None = None
    n_generations: int = 0
    n_evaluations: int = 0
    message: str = ""
    polished: bool = False
    validated_tnmse: float | None = None


class WeightProgrammingOptimizer:
    """Search the conductance programming strategy that keeps the weights most faithful
    over time, with differential evolution.

    The loss is ``(TNMSE − baseline) / baseline + loss_margin`` where TNMSE is the
    time-averaged normalized mean squared error of a test layer
    (``max_input_size × 20`` weights drawn from ``weights``) under programming noise, drift,
    read noise and drift compensation, averaged over ``t_steps``; ``baseline`` is the
    TNMSE of ``g_converter_baseline``. By default the whole population is evaluated as one
    batched tensor computation (see :mod:`anatile.wpo.batched`).

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
        rpu_config: a copy of the caller's configuration; after a run its noise model
            holds the optimized converter.
        search_rpu_config: the copy the search runs on (output scaling and mapping off,
            exact drift-compensation readout with ``perfect_readout``).
        events: :class:`~anatile.events.EventHub` of the progress events.
        result: the :class:`WPOResult` after a run, else None.
        loss_baseline: baseline TNMSE (``inf`` until measured).
        best_loss: TNMSE of the best strategy after a run (``inf`` before).
        test_weights: the test weights, tile layout ``(out_features, in_features)``.
        space: the :class:`~anatile.wpo.encoding.SearchSpace`.

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
        opts = self.options
        if not isinstance(g_converter_baseline, _BASELINE_TYPES):
            raise TypeError(
                f"g_converter_baseline = {type(g_converter_baseline).__name__} not supported; "
                "expected SinglePair, DualPair, NPair or CustomPairConductanceConverter"
            )
        if not isinstance(rpu_config, InferenceRPUConfig):
            raise TypeError(
                f"rpu_config: expected an InferenceRPUConfig, got {type(rpu_config).__name__}"
            )
        if not isinstance(weights, Tensor) or weights.numel() == 0:
            raise ValueError("weights: expected a non-empty tensor")
        if not bool(torch.isfinite(weights.detach()).all()):
            raise ValueError("weights: expected finite values (found NaN or inf)")
        if float(weights.detach().abs().max()) == 0.0:
            raise ValueError("weights: all zero; there is no weight range to program")
        if not isinstance(f_lst, (list, tuple)) or len(f_lst) == 0:
            raise ValueError(f"f_lst: expected a non-empty list, got {f_lst!r}")
        for f in f_lst:
            if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float))
                                  or not math.isfinite(f) or f <= 0):
                raise ValueError(f"f_lst: expected None or positive numbers, got {f_lst!r}")
        t_list = [float(t) for t in t_steps]
        if not t_list or any(not math.isfinite(t) or t < 0 for t in t_list):
            raise ValueError(f"t_steps: expected a non-empty list of times >= 0, got {t_steps!r}")
        if not isinstance(symmetric, bool):
            raise TypeError(f"symmetric: expected a bool, got {symmetric!r}")

        self.f_lst: list[float | None] = list(f_lst)
        self.t_steps = t_list
        self.symmetric = symmetric
        # the caller's config is never touched; the search runs on a second copy
        self.rpu_config = copy.deepcopy(rpu_config)
        self.mapping_saved = copy.deepcopy(self.rpu_config.mapping)
        search = copy.deepcopy(rpu_config)
        # output scales would distort the weights the loss compares: off during the search
        search.mapping.weight_scaling_omega = 0.0
        search.mapping.weight_scaling_columnwise = False
        search.mapping.learn_out_scaling = False
        search.mapping.out_scaling_columnwise = False
        if opts.perfect_readout:
            search.forward.is_perfect = True
        self.search_rpu_config = search
        self.noise_model = search.noise_model
        self.g_converter_baseline = copy.deepcopy(g_converter_baseline)
        self.g_min = float(self.g_converter_baseline.g_min)
        self.g_max = float(self.g_converter_baseline.g_max)
        self.g_err = opts.g_err * (self.g_max - self.g_min)  # µS
        self.test_in_features = opts.test_in_features or search.mapping.max_input_size
        self.test_out_features = opts.test_out_features
        if opts.device is not None:
            self.device = torch.device(opts.device)
        else:
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

        sample_gen = torch.Generator().manual_seed(opts.seed)
        self.test_weights = downsample_weight_distribution(
            weights.detach().to("cpu", torch.float32).flatten(),
            Size([self.test_out_features, self.test_in_features]), generator=sample_gen,
        )
        self.max_abs_weight_unitless = float(self.test_weights.abs().max())
        self.weights_discretized_unitless = torch.linspace(
            -self.max_abs_weight_unitless, self.max_abs_weight_unitless, opts.nbins * 2 - 1,
            dtype=torch.float64,
        )
        self.space = SearchSpace(
            f_lst=tuple(None if f is None else float(f) for f in self.f_lst),
            f_min=opts.f_min, f_max=opts.f_max, g_min=self.g_min, g_max=self.g_max,
            g_err=self.g_err, use_max_kw=opts.use_max_kw, symmetric=symmetric,
            max_abs_weight_unitless=self.max_abs_weight_unitless,
            weights_discretized_unitless=tuple(self.weights_discretized_unitless.tolist()),
        )
        self.generator = torch.Generator(self.device).manual_seed(opts.seed)
        self.events = EventHub()
        self.loss_baseline = math.inf
        self.best_loss = math.inf
        self.result: WPOResult | None = None
        self._stop = threading.Event()
        self._engine: BatchedTNMSE | None = None
        self._t_start = time.perf_counter()
        self._history: list[GenerationRecord] = []
        self._stopped_by_user = False
        self._stopped_by_callback = False
        self._objective: BatchedObjective | None = None
        self._search_start = 0.0

    # ------------------------------------------------------------------ helpers
    def request_stop(self) -> None:
        """Ask a running optimization to stop after the current generation (thread-safe)."""
        self._stop.set()

    def generate_hop_bounds(self) -> tuple[tuple[float, float], ...]:
        """Bounds of the differential-evolution hypercube.

        Returns:
            ``(0.0, 1.0)`` for each dimension: free f factors, ``k_w`` (unless
            ``use_max_kw``), then ``(2·P − 1)`` blocks of ``nbins`` (symmetric) or
            ``2·nbins − 1`` coordinates.
        """
        return generate_bounds(self.space)

    def loss_context(self, get_baseline: bool = False) -> LossContext:
        """The picklable context of the per-candidate loss."""
        return LossContext(
            space=self.space, rpu_config=self.search_rpu_config, t_steps=tuple(self.t_steps),
            test_weights=self.test_weights, max_abs_weight_unitless=self.max_abs_weight_unitless,
            loss_baseline=self.loss_baseline, loss_margin=self.options.loss_margin,
            get_baseline=get_baseline, seed=self.options.seed,
        )

    def batched_engine(self) -> BatchedTNMSE:
        """The batched TNMSE evaluator of this optimizer (built on first use).

        Raises:
            TypeError: if the noise model or drift compensation is not supported by the
                batched path.
            ConfigError: if the readout is not perfect (``perfect_readout=False`` with
                forward IO noise), which the batched path does not model.
        """
        if self._engine is None:
            from anatile.exceptions import ConfigError

            if not self.search_rpu_config.forward.is_perfect:
                raise ConfigError(
                    "WPOOptions.perfect_readout: the batched loss models a drift-compensation "
                    "readout without IO noise; set perfect_readout=True or vectorized=False"
                )
            physics = PCMPhysics.from_noise_model(self.noise_model, self.g_max)
            self._engine = BatchedTNMSE(
                self.test_weights, self.t_steps, physics, n_grid=self.space.n_grid,
                compensation=compensation_kind(self.search_rpu_config.drift_compensation),
                device=self.device, chunk_size=self.options.chunk_size,
                common_random_numbers=self.options.common_random_numbers,
                compile=self.options.compile, native=self.options.native,
            )
        return self._engine

    def _elapsed(self) -> float:
        return time.perf_counter() - self._t_start

    def _converter_from(self, f_lst: list[float],
                        g_lst: list[list[float]]) -> CustomPairConductanceConverter:
        return CustomPairConductanceConverter(
            [float(f) for f in f_lst], [[float(g) for g in row] for row in g_lst],
            g_max=self.g_max, g_min=self.g_min, invertibility_test=False,
        )

    # ------------------------------------------------------------------ baseline
    def get_loss_baseline(self) -> float:
        """Average TNMSE of ``g_converter_baseline`` over ``baseline_iterations`` runs.

        Each run re-programs and drifts the test weights at every time step with
        independent noise (batched path: all runs in one tensor computation; reference
        path: one test tile per run).

        Returns:
            The baseline TNMSE (also stored in :attr:`loss_baseline`).
        """
        opts = self.options
        n = opts.baseline_iterations
        if opts.use_batched:
            engine = self.batched_engine()
            targets, params = self.g_converter_baseline.convert_to_conductances(
                self.test_weights.to(torch.float64))
            g_target = torch.stack([g.reshape(-1) for g in targets])
            coef = _linear_coefficients(self.g_converter_baseline, params, g_target.shape[0])
            tnmse = engine.evaluate_targets(g_target, coef, n, self.generator)
            value = float(tnmse.mean())
        else:
            rpu_config = copy.deepcopy(self.search_rpu_config)
            rpu_config.noise_model.g_converter = copy.deepcopy(self.g_converter_baseline)
            ctx = self.loss_context(get_baseline=True)
            vals = [
                loss_rpu_config(_replace(ctx, rpu_config=rpu_config, seed=opts.seed * 7919 + i))
                for i in range(n)
            ]
            value = float(np.mean(vals))
        self.loss_baseline = value
        _log.info("loss baseline = %f (%s)", value, type(self.g_converter_baseline).__name__)
        return value

    # ------------------------------------------------------------------ the search
    def _on_generation(self, intermediate_result: Any) -> bool:
        opts = self.options
        nit = int(intermediate_result.nit)
        fun = float(intermediate_result.fun)
        f_lst, g_lst = denormalize(np.asarray(intermediate_result.x), self.space)
        best_tnmse = (fun - opts.loss_margin) * self.loss_baseline + self.loss_baseline
        elapsed = self._elapsed()
        losses = np.array(intermediate_result.population_energies, dtype=np.float64, copy=True)
        if self._objective is not None and hasattr(intermediate_result, "population"):
            self._objective.observe(intermediate_result.population, losses)
        per_gen = (elapsed - self._search_start) / max(nit, 1)
        eta = per_gen * max(opts.maxiter - nit, 0)
        self._history.append(GenerationRecord(nit, fun, best_tnmse,
                                              float(np.median(losses)), elapsed))
        if opts.disp:
            _log.info("generation %d: best loss %.6f (TNMSE %.6g), %.1f s", nit, fun,
                      best_tnmse, elapsed)
        stop = self.events.emit(GenerationFinished(
            source=self, generation=nit, best_loss=fun, population_losses=losses,
            best_f_lst=f_lst, best_g_lst=g_lst, best_tnmse=best_tnmse, elapsed_s=elapsed,
            eta_s=eta,
        ))
        if self._stop.is_set():
            stop = True
        if stop:
            self._stopped_by_user = True
        if opts.callback is not None:
            try:
                if opts.callback(intermediate_result=intermediate_result) is True:
                    self._stopped_by_callback = True
            except StopIteration:
                self._stopped_by_callback = True
        return stop or self._stopped_by_callback

    def differential_weight_evolution(self) -> tuple[CustomPairConductanceConverter, bool]:
        """Run differential evolution (measuring the baseline first if needed).

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
        self._history = []
        self._stopped_by_user = False
        self._stopped_by_callback = False
        self._search_start = self._elapsed()
        init: str | np.ndarray = opts.init
        x_base = self.baseline_point() if opts.seed_with_baseline else None
        if x_base is not None:
            init = self._initial_population(len(bounds), x_base)
        common: dict[str, Any] = dict(
            callback=self._on_generation, strategy=opts.strategy, maxiter=opts.maxiter,
            popsize=opts.popsize, tol=opts.tol, atol=opts.atol, mutation=opts.mutation,
            recombination=opts.recombination, rng=opts.seed, disp=False, polish=False,
            init=init,
        )
        self._objective = None
        if opts.use_batched:
            objective = BatchedObjective(self.space, self.batched_engine(), self.generator,
                                         self.loss_baseline, opts.loss_margin,
                                         paired=opts.paired_selection)
            self._objective = objective
            res = differential_evolution(objective, bounds, vectorized=True,
                                         updating="deferred", **common)
            n_eval = objective.n_candidates
        else:
            ctx = self.loss_context()
            res = differential_evolution(
                loss_fxn, bounds, args=(ctx,), workers=opts.workers,
                updating="immediate" if opts.workers == 1 else "deferred", **common)
            n_eval = int(res.nfev)
        x_best = np.asarray(res.x, dtype=np.float64)
        fun = float(res.fun)
        message = str(res.message)
        polished = False
        if opts.polish and not self._stopped_by_user and opts.polish_maxiter > 0:
            x_pol, fun_pol, polished = self._polish(x_best, fun, bounds)
            if polished:
                x_best, fun = x_pol, fun_pol
                message += "; polished"
        f_lst, g_lst = denormalize(x_best, self.space)
        converter = self._converter_from(f_lst, g_lst)
        success = bool(fun < 0.0)
        validated = None
        if opts.use_batched and opts.validation_iterations > 0:
            validated = self.validate_point(x_best, opts.validation_iterations)
        self.best_loss = (fun - opts.loss_margin) * self.loss_baseline + self.loss_baseline
        self.result = WPOResult(
            converter=converter, success=success, best_tnmse=self.best_loss,
            baseline_tnmse=self.loss_baseline, history=list(self._history),
            elapsed_s=self._elapsed(), stopped_by_user=self._stopped_by_user,
            stopped_by_callback=self._stopped_by_callback, best_loss=fun,
            f_lst=list(f_lst), g_lst=[list(r) for r in g_lst], x=x_best,
            n_generations=int(res.nit), n_evaluations=n_eval, message=message,
            polished=polished, validated_tnmse=validated,
        )
        return converter, success

    def validate_point(self, x: np.ndarray, repeats: int) -> float:
        """Mean TNMSE of hypercube point ``x`` over ``repeats`` independent noise draws
        (batched path; draws from the optimizer's generator)."""
        engine = self.batched_engine()
        shared = engine.common_random_numbers
        engine.common_random_numbers = False
        try:
            f, g = decode_batch(np.repeat(np.asarray(x, dtype=np.float64)[None], repeats, 0),
                                self.space)
            return float(engine(f, g, self.generator).mean())
        finally:
            engine.common_random_numbers = shared

    def baseline_point(self) -> np.ndarray | None:
        """The baseline converter encoded as a hypercube point, or None if it has a
        different number of pairs than ``f_lst``.

        The baseline's conductances at the grid weights are taken as the strategy; fixed f
        factors that differ and conductances outside the search space are clipped to the
        nearest point.
        """
        conv = self.g_converter_baseline
        f_base = list(getattr(conv, "f_lst", [1.0]))
        if len(f_base) != len(self.f_lst):
            return None
        grid = self.weights_discretized_unitless.to(torch.float64)
        gs, _ = conv.convert_to_conductances(grid)
        g_lst = [[float(v) for v in g.reshape(-1)] for g in gs]
        try:
            return encode(f_base, g_lst, self.space)
        except ValueError:  # pragma: no cover - shapes already checked
            return None

    def _initial_population(self, n_dims: int, x_base: np.ndarray) -> np.ndarray:
        """The ``init`` sampling of scipy (Latin hypercube, Sobol', Halton or random) with
        the baseline point as its first member."""
        from scipy.stats import qmc

        n = self.options.popsize * n_dims
        rng = np.random.default_rng(self.options.seed)
        kind = self.options.init
        sampler: Any
        if kind == "latinhypercube":
            sampler = qmc.LatinHypercube(d=n_dims, rng=rng)
        elif kind == "sobol":
            sampler = qmc.Sobol(d=n_dims, rng=rng)
        elif kind == "halton":
            sampler = qmc.Halton(d=n_dims, rng=rng)
        else:
            sampler = None
        if sampler is None:
            pop = rng.random((n, n_dims))
        elif kind == "sobol":
            pop = sampler.random_base2(int(np.ceil(np.log2(max(n, 2)))))[:n]
        else:
            pop = sampler.random(n)
        pop = np.array(pop, dtype=np.float64)
        pop[0] = x_base
        if n < 5:  # scipy needs at least 5 members for an explicit population
            extra = rng.random((5 - n, n_dims))
            pop = np.concatenate([pop, extra])
        return pop

    def _polish(self, x0: np.ndarray, fun0: float,
                bounds: tuple[tuple[float, float], ...]) -> tuple[np.ndarray, float, bool]:
        """L-BFGS-B from the best candidate on a fixed-noise (sample-average) loss.

        A noisy loss has no usable finite-difference gradient, so the polish minimizes
        the loss under one fixed noise draw (the gradient is one batched call of ``D + 1``
        candidates). The polished point is kept only if it also wins on fresh noise
        against the starting point (both evaluated on the same draws).
        """
        opts = self.options
        if not opts.use_batched or self._objective is None:
            return x0, fun0, False
        obj = self._objective
        seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(
            opts.seed + 1)).item())
        base, margin = self.loss_baseline, opts.loss_margin
        step = 1e-4

        def fixed(points: np.ndarray) -> np.ndarray:
            gen = torch.Generator(self.device).manual_seed(seed)
            shared = obj.engine.common_random_numbers
            obj.engine.common_random_numbers = True
            try:
                vals = obj.tnmse(points, generator=gen)
            finally:
                obj.engine.common_random_numbers = shared
            return (vals - base) / base + margin

        def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            dim = x.size
            pts = np.repeat(x[None, :], dim + 1, axis=0)
            # forward differences, backward at the upper bound
            h = np.where(x + step <= 1.0, step, -step)
            pts[1 + np.arange(dim), np.arange(dim)] += h
            vals = fixed(pts)
            return float(vals[0]), (vals[1:] - vals[0]) / h

        try:
            res = minimize(fun_and_grad, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": opts.polish_maxiter})
        except (ValueError, RuntimeError, FloatingPointError):  # pragma: no cover - defensive
            _log.warning("polish failed; keeping the differential-evolution result",
                         exc_info=True)
            return x0, fun0, False
        x1 = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, 1.0)
        if np.allclose(x1, x0):
            return x0, fun0, False
        # fair comparison on fresh common noise, averaged over a few draws
        repeats = 4
        pts = np.concatenate([np.repeat(x0[None], repeats, 0), np.repeat(x1[None], repeats, 0)])
        engine = obj.engine
        shared = engine.common_random_numbers
        engine.common_random_numbers = False
        try:
            vals = obj.tnmse(pts)
        finally:
            engine.common_random_numbers = shared
        t0, t1 = float(vals[:repeats].mean()), float(vals[repeats:].mean())
        if t1 < t0:
            return x1, (t1 - base) / base + margin, True
        return x0, fun0, False

    def run_optimizer(self) -> tuple[CustomPairConductanceConverter, bool]:
        """Measure the baseline, run the search, restore the mapping and report.

        Emits :class:`~anatile.wpo.events.OptimizerStarted`,
        :class:`~anatile.wpo.events.BaselineMeasured`, one
        :class:`~anatile.wpo.events.GenerationFinished` per generation and
        :class:`~anatile.wpo.events.OptimizerFinished`.

        Returns:
            ``(converter, success)``; the full :class:`WPOResult` is in :attr:`result`.
        """
        opts = self.options
        self._stop.clear()
        self._t_start = time.perf_counter()
        bounds = self.generate_hop_bounds()
        self.events.emit(OptimizerStarted(
            source=self, n_dims=len(bounds), n_candidates=opts.popsize * len(bounds),
            maxiter=opts.maxiter, vectorized=opts.use_batched, device=str(self.device),
        ))
        baseline = self.get_loss_baseline()
        self.events.emit(BaselineMeasured(
            source=self, baseline_tnmse=baseline,
            target_tnmse=baseline * (1.0 - opts.loss_margin),
            converter=type(self.g_converter_baseline).__name__, elapsed_s=self._elapsed(),
        ))
        converter, success = self.differential_weight_evolution()
        # a configuration ready for inference: the caller's settings, optimized converter
        self.rpu_config.noise_model.g_converter = copy.deepcopy(converter)
        self.f_lst = list(converter.f_lst)
        assert self.result is not None
        self.result.elapsed_s = self._elapsed()
        self.events.emit(OptimizerFinished(source=self, result=self.result))
        return converter, success


def _replace(ctx: LossContext, **changes: Any) -> LossContext:
    import dataclasses

    return dataclasses.replace(ctx, **changes)


def _linear_coefficients(converter: Any, params: dict[str, Any], n_dev: int) -> Tensor:
    """Weight per unit conductance of each device (the converters are linear going back)."""
    coef = []
    for k in range(n_dev):
        unit = [torch.full((1,), 1.0 if j == k else 0.0, dtype=torch.float64)
                for j in range(n_dev)]
        zero = [torch.zeros(1, dtype=torch.float64) for _ in range(n_dev)]
        one = converter.convert_back_to_weights(unit, params)
        off = converter.convert_back_to_weights(zero, params)
        coef.append(float(one.reshape(-1)[0] - off.reshape(-1)[0]))
    return torch.tensor(coef, dtype=torch.float64)
