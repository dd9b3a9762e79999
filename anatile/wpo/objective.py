"""The objective of the search: TNMSE of hypercube points, and the baseline it is relative to.

:class:`WPOObjective` evaluates strategies on the batched engine (:mod:`anatile.wpo.batched`)
or, for the baseline, through the reference path (one test tile per run). Every evaluation
names its random source and whether the candidates of the call share one noise draw
(``common_noise``): nothing is toggled on the engine.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import torch
from torch import Tensor

from anatile.exceptions import ConfigError
from anatile.functional import pcm_formulas as F
from anatile.functional.weight_scaling import mapping_scales
from anatile.inference.physics import OneHotReadout
from anatile.wpo.batched import BatchedTNMSE, compensation_kind
from anatile.wpo.encoding import decode_batch
from anatile.wpo.loss import LossContext, loss_rpu_config
from anatile.wpo.options import WPOOptions
from anatile.wpo.problem import WPOProblem

__all__ = ["WPOObjective", "build_engine", "linear_coefficients", "rederive_table"]

MAX_TABLE_CELLS = 1024
"""Largest uniform grid (cells per sign) :func:`rederive_table` tries for a converter."""


def build_engine(problem: WPOProblem, options: WPOOptions) -> BatchedTNMSE:
    """The batched TNMSE evaluator of ``problem``.

    Raises:
        NotImplementedError: if the noise model has no ``physics()`` description.
        TypeError: if the drift compensation is not supported by the batched path.
        ConfigError: if the forward IO model has a feature the batched readout does not
            model (input noise, stochastic rounding, a readout near the ADC bound), or for
            column-wise weight scaling.

    With the noise model's ``rederive_conductances`` (aihwkit's drift convention) the
    engine converts the programmed weights again (``BatchedTNMSE(rederive=True)``).
    """
    search = problem.search_rpu_config
    mapping = search.mapping
    if mapping.weight_scaling_omega > 0 and mapping.weight_scaling_columnwise:
        raise ConfigError(
            "MappingParameter.weight_scaling_columnwise: column-wise weight scaling maps "
            "every row of the test layer onto the full conductance range, which the batched "
            "loss does not model; use vectorized=False"
        )
    readout = (OneHotReadout.from_io(search.forward)
               if search.drift_compensation is not None else None)
    scales = mapping_scales(problem.test_weights, mapping.weight_scaling_omega,
                            mapping.weight_scaling_columnwise)
    return BatchedTNMSE(
        problem.test_weights, list(problem.t_steps), search.noise_model.physics(),
        n_grid=problem.space.n_grid,
        compensation=compensation_kind(search.drift_compensation), device=problem.device,
        chunk_size=options.chunk_size, common_random_numbers=options.common_random_numbers,
        compile=options.compile, native=options.native,
        readout=readout, readout_scale=1.0 / scales,
        rederive=bool(search.noise_model.rederive_conductances),
    )


class WPOObjective:
    """TNMSE of strategies of one problem (the batched engine is built on first use).

    Args:
        problem: the checked problem.
        options: the optimizer's options.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.inference import DualPairConductanceConverter
        >>> options = WPOOptions(test_in_features=16, test_out_features=4, native=False,
        ...                      compile=False, device="cpu")
        >>> problem = WPOProblem.build(0.1 * torch.randn(500), [None, None], InferenceRPUConfig(),
        ...                            [1.0, 3600.0], DualPairConductanceConverter([1.0, 1.0]),
        ...                            True, options)
        >>> objective = WPOObjective(problem, options)
        >>> x = problem.baseline_point()[None, :]
        >>> gen = torch.Generator().manual_seed(0)
        >>> tnmse = objective.evaluate(x, common_noise=True, generator=gen)
        >>> tnmse.shape, bool(tnmse[0] > 0)
        ((1,), True)
    """

    def __init__(self, problem: WPOProblem, options: WPOOptions) -> None:
        self.problem = problem
        self.options = options
        self._engine: BatchedTNMSE | None = None

    @property
    def engine(self) -> BatchedTNMSE:
        """The batched evaluator (see ``anatile.wpo.objective.build_engine``)."""
        if self._engine is None:
            self._engine = build_engine(self.problem, self.options)
        return self._engine

    def evaluate(self, x: np.ndarray, *, common_noise: bool,
                 generator: torch.Generator) -> np.ndarray:
        """TNMSE of the hypercube points ``x`` (``(S, D)`` or ``(D,)``), float64 ``(S,)``.

        Args:
            x: points of the unit hypercube.
            common_noise: the points of this call share one noise draw (differences
                between them lose the noise they do not cause); False: independent draws.
            generator: random source (on the engine's device).
        """
        f, g_table = decode_batch(np.atleast_2d(np.asarray(x, dtype=np.float64)),
                                  self.problem.space)
        out = self.engine(f, g_table, generator, common_random_numbers=common_noise)
        return out.cpu().numpy()

    def baseline(self, repeats: int, generator: torch.Generator) -> float:
        """Mean TNMSE of the baseline converter over ``repeats`` independent runs
        (:meth:`baseline_values`)."""
        values = self.baseline_values(repeats, generator)
        # each path's mean as it has always been taken (the same figures to the last bit)
        return float(torch.from_numpy(values).mean() if self.options.use_batched
                     else np.mean(values))

    def baseline_values(self, repeats: int, generator: torch.Generator) -> np.ndarray:
        """TNMSE of the baseline converter in each of ``repeats`` independent runs
        (float64 ``(repeats,)``).

        Each run re-programs and drifts the test weights at every time step with
        independent noise (batched path: all runs in one tensor computation; reference
        path: one test tile per run, seeded from the options' seed).
        """
        problem, options = self.problem, self.options
        conv = problem.g_converter_baseline
        if options.use_batched:
            targets, params = conv.convert_to_conductances(
                problem.test_weights.to(torch.float64))
            g_target = torch.stack([g.reshape(-1) for g in targets])
            coef = linear_coefficients(conv, params, g_target.shape[0])
            table = (rederive_table(conv, problem.test_weights) if self.engine.rederive
                     else None)
            values = self.engine.evaluate_targets(g_target, coef, repeats, generator,
                                                  table=table)
            return values.cpu().numpy().astype(np.float64)
        rpu_config = copy.deepcopy(problem.search_rpu_config)
        rpu_config.noise_model.g_converter = copy.deepcopy(conv)
        ctx = dataclasses.replace(self.loss_context(get_baseline=True), rpu_config=rpu_config)
        return np.array([loss_rpu_config(dataclasses.replace(ctx, seed=options.seed * 7919 + i))
                         for i in range(repeats)], dtype=np.float64)

    def loss_context(self, get_baseline: bool = False,
                     loss_baseline: float = float("inf")) -> LossContext:
        """The picklable context of the per-candidate (reference) loss."""
        problem = self.problem
        return LossContext(
            space=problem.space, rpu_config=problem.search_rpu_config,
            t_steps=problem.t_steps, test_weights=problem.test_weights,
            max_abs_weight_unitless=problem.max_abs_weight_unitless,
            loss_baseline=loss_baseline, loss_margin=self.options.loss_margin,
            get_baseline=get_baseline, seed=self.options.seed,
        )


def linear_coefficients(converter: Any, params: dict[str, Any], n_dev: int) -> Tensor:
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


def rederive_table(converter: Any, weights: Tensor) -> Tensor:
    """The converter as a table on a uniform grid over ``±max|weights|``, for the batched
    loss with aihwkit's drift convention (the programmed weights converted again).

    The grid is the smallest one of ``2·L + 1`` points (``L ≤`` :data:`MAX_TABLE_CELLS`)
    whose linear interpolation reproduces the converter (to float64 rounding) at the grid
    of ``2·MAX_TABLE_CELLS + 1`` points and at ``weights``: the N-pair converters are
    piecewise linear in ``W / max|W|`` with kinks at fractions of ``Σ f``, so ``L = Σ f``
    does for integer significances (SinglePair: 3 points). The values come from the
    converter itself, so its formula stays in one place.

    Args:
        converter: a conductance converter whose conductances depend on ``W / max|W|``
            only (the N-pair and custom-pair converters).
        weights: the test weights (any shape).

    Returns:
        float64 conductances ``(n_devices, 2·L + 1)`` (µS).

    Raises:
        ConfigError: for a converter no such grid reproduces (e.g. one that maps the
            range ``[min W, max W]`` rather than ``±max|W|``).

    Example:
        >>> from anatile.inference import SinglePairConductanceConverter
        >>> table = rederive_table(SinglePairConductanceConverter(g_max=25.0), torch.randn(64))
        >>> table.shape, table[0].tolist()  # g+ at -max|W|, 0 and +max|W|
        (torch.Size([2, 3]), [0.0, 0.0, 25.0])
    """
    w = weights.detach().to(torch.float64).reshape(-1).cpu()
    m = float(w.abs().max())
    if not m > 0:
        raise ConfigError("weights: expected a non-zero weight to scale the converter's grid")
    # the converter on a fine grid and on the weights, each converted as a whole
    fine = torch.linspace(-1.0, 1.0, 2 * MAX_TABLE_CELLS + 1, dtype=torch.float64)
    check = torch.cat([fine, w / m])
    expected = torch.cat([_conductances(converter, fine * m), _conductances(converter, w)], 1)
    tol = 1e-9 * max(1.0, float(expected.abs().max()))
    for cells in range(1, MAX_TABLE_CELLS + 1):
        grid = torch.linspace(-1.0, 1.0, 2 * cells + 1, dtype=torch.float64)
        table = _conductances(converter, grid * m)
        pos = F.grid_position(check, 1.0, cells).clamp(0, 2 * cells)
        cell = pos.floor().clamp(max=2 * cells - 1)
        frac = pos - cell
        idx = cell.long()
        interp = table[:, idx] + (table[:, idx + 1] - table[:, idx]) * frac
        if interp.shape == expected.shape and float((interp - expected).abs().max()) <= tol:
            return table
    raise ConfigError(
        f"noise_model.rederive_conductances: the batched loss needs the baseline converter "
        f"as a table on a uniform grid over ±max|W|, and no grid of up to "
        f"{2 * MAX_TABLE_CELLS + 1} points reproduces {type(converter).__name__}; "
        "use vectorized=False"
    )


def _conductances(converter: Any, weights: Tensor) -> Tensor:
    """``(n_devices, n)``: the converter's conductances of the 1-D ``weights``."""
    targets, _ = converter.device_conductances(weights)
    return torch.stack([g.reshape(-1).to(torch.float64) for g in targets])
