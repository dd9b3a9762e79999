"""The problem a Weight Programming Optimizer solves, checked and prepared once.

:class:`WPOProblem` holds everything that does not change during a run: the test weights
sampled from the user's weight distribution, the inference times, the baseline converter,
the configuration the search runs on and the search space (:mod:`anatile.wpo.encoding`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Size, Tensor

from anatile.checks import check_times
from anatile.config.rpu_config import InferenceRPUConfig
from anatile.inference import (
    CustomPairConductanceConverter,
    DualPairConductanceConverter,
    NPairConductanceConverter,
    SinglePairConductanceConverter,
)
from anatile.wpo.encoding import SearchSpace, encode
from anatile.wpo.options import WPOOptions
from anatile.wpo.sampling import downsample_weight_distribution

__all__ = ["BASELINE_TYPES", "WPOProblem"]

#: Converters a search can start from and be measured against.
BASELINE_TYPES = (
    SinglePairConductanceConverter,
    DualPairConductanceConverter,
    NPairConductanceConverter,
    CustomPairConductanceConverter,
)


@dataclass(frozen=True)
class WPOProblem:
    """Checked inputs of a search (see :class:`~anatile.wpo.WeightProgrammingOptimizer`).

    Attributes:
        f_lst: significance factor per pair (None: optimized).
        t_steps: inference times (s).
        symmetric: one strategy mirrored for both signs.
        search_rpu_config: the configuration the search runs on (learned output scales
            and weight scaling off, perfect drift-compensation readout with
            ``perfect_readout``).
        g_converter_baseline: a copy of the converter to beat.
        g_min, g_max: its conductance range (µS).
        test_weights: the test layer ``(out_features, in_features)``.
        max_abs_weight_unitless: ``max|test_weights|``.
        weights_discretized_unitless: the grid weights of a strategy (float64).
        space: the search space.
        device: where the batched loss runs.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.inference import DualPairConductanceConverter
        >>> options = WPOOptions(test_in_features=16, test_out_features=4, native=False,
        ...                      compile=False, device="cpu")
        >>> problem = WPOProblem.build(0.1 * torch.randn(500), [None, None], InferenceRPUConfig(),
        ...                            [1.0, 3600.0], DualPairConductanceConverter([1.0, 1.0]),
        ...                            True, options)
        >>> problem.test_weights.shape, problem.space.n_grid
        (torch.Size([4, 16]), 11)
        >>> problem.baseline_point().shape  # the baseline strategy as a hypercube point
        (21,)
    """

    f_lst: tuple[float | None, ...]
    t_steps: tuple[float, ...]
    symmetric: bool
    search_rpu_config: InferenceRPUConfig
    g_converter_baseline: Any
    g_min: float
    g_max: float
    test_weights: Tensor
    max_abs_weight_unitless: float
    weights_discretized_unitless: Tensor
    space: SearchSpace
    device: torch.device

    @classmethod
    def build(
        cls,
        weights: Any,
        f_lst: Any,
        rpu_config: Any,
        t_steps: Any,
        g_converter_baseline: Any,
        symmetric: Any,
        options: WPOOptions,
    ) -> WPOProblem:
        """Check the arguments of the optimizer and prepare the problem.

        Raises:
            TypeError: for an unsupported baseline converter, a non-inference
                ``rpu_config`` or a non-bool ``symmetric``.
            ValueError: for empty/non-finite/all-zero weights, a bad ``f_lst`` or bad
                ``t_steps``.
        """
        if not isinstance(g_converter_baseline, BASELINE_TYPES):
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
        t_list = _times(t_steps)
        if not isinstance(symmetric, bool):
            raise TypeError(f"symmetric: expected a bool, got {symmetric!r}")

        search = copy.deepcopy(rpu_config)
        # learned output scales would distort the weights the loss compares: off during the
        # search; the weight scaling ω stays the one the user deploys (it sets the signal of
        # a noisy drift-compensation readout), except for aihwkit's objective (ω = 0)
        search.mapping.learn_out_scaling = False
        search.mapping.out_scaling_columnwise = False
        if options.aihwkit_objective:
            search.mapping.weight_scaling_omega = 0.0
            search.mapping.weight_scaling_columnwise = False
        elif options.perfect_readout:
            search.forward.is_perfect = True
        baseline = copy.deepcopy(g_converter_baseline)
        g_min, g_max = float(baseline.g_min), float(baseline.g_max)
        in_features = options.test_in_features or search.mapping.max_input_size
        test_weights = downsample_weight_distribution(
            weights.detach().to("cpu", torch.float32).flatten(),
            Size([options.test_out_features, in_features]),
            generator=torch.Generator().manual_seed(options.seed),
        )
        max_abs = float(test_weights.abs().max())
        grid = torch.linspace(-max_abs, max_abs, options.nbins * 2 - 1, dtype=torch.float64)
        f_tuple = tuple(None if f is None else float(f) for f in f_lst)
        space = SearchSpace(
            f_lst=f_tuple, f_min=options.f_min, f_max=options.f_max, g_min=g_min,
            g_max=g_max, g_err=options.g_err * (g_max - g_min), use_max_kw=options.use_max_kw,
            symmetric=symmetric, max_abs_weight_unitless=max_abs,
            weights_discretized_unitless=tuple(grid.tolist()),
        )
        if options.device is not None:
            device = torch.device(options.device)
        else:
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return cls(f_tuple, tuple(t_list), symmetric, search, baseline, g_min, g_max,
                   test_weights, max_abs, grid, space, device)

    def baseline_point(self) -> Any:
        """The baseline converter encoded as a hypercube point (numpy), or None if it has
        a different number of pairs than ``f_lst``.

        The baseline's conductances at the grid weights are taken as the strategy; fixed f
        factors that differ and conductances outside the search space are clipped to the
        nearest point.
        """
        conv = self.g_converter_baseline
        f_base = list(getattr(conv, "f_lst", [1.0]))
        if len(f_base) != len(self.f_lst):
            return None
        gs, _ = conv.convert_to_conductances(self.weights_discretized_unitless)
        g_lst = [[float(v) for v in g.reshape(-1)] for g in gs]
        return encode(f_base, g_lst, self.space)

    def converter(self, f_lst: Sequence[float],
                  g_lst: Sequence[Sequence[float]]) -> CustomPairConductanceConverter:
        """The custom-pair converter of a decoded strategy, in the baseline's µS range."""
        return CustomPairConductanceConverter(
            [float(f) for f in f_lst], [[float(g) for g in row] for row in g_lst],
            g_max=self.g_max, g_min=self.g_min, invertibility_test=False,
        )


def _times(t_steps: Any) -> list[float]:
    # the shared check: a str, None or a single number is a TypeError naming t_steps
    return check_times("t_steps", t_steps)
