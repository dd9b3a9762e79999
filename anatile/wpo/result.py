"""What a Weight Programming Optimizer run returns: :class:`WPOResult` and its history."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from anatile.inference import CustomPairConductanceConverter

__all__ = ["GenerationRecord", "WPOResult"]


@dataclass(frozen=True)
class GenerationRecord:
    """Summary of one generation (kept in :attr:`WPOResult.history`).

    Attributes:
        generation: 1-based generation number.
        best_loss: best relative loss so far.
        best_tnmse: TNMSE of the best strategy so far.
        median_loss: median population loss.
        elapsed_s: seconds since the run started.

    Example:
        >>> record = GenerationRecord(generation=1, best_loss=0.05, best_tnmse=0.07,
        ...                           median_loss=0.9, elapsed_s=0.4)
        >>> record.best_loss < record.median_loss
        True
    """

    generation: int
    best_loss: float
    best_tnmse: float
    median_loss: float
    elapsed_s: float


@dataclass
class WPOResult:
    """Outcome of :meth:`~anatile.wpo.WeightProgrammingOptimizer.run_optimizer`.

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
        kernel: what evaluated the loss: the batched kernel (``"numba"``, ``"torch"``,
            ``"torch.compile"``) or ``"per-candidate"``. Every kernel consumes the same
            random draws, but float rounding differs between kernels and differential
            evolution amplifies it: the same seed reproduces a converter bit for bit on
            the same kernel, and a statistically equivalent one on another.

    Example:
        >>> from anatile.inference import CustomPairConductanceConverter
        >>> conv = CustomPairConductanceConverter([1.0], [[0.0, 0.0, 25.0], [25.0, 0.0, 0.0]])
        >>> result = WPOResult(converter=conv, success=True, best_tnmse=0.06, baseline_tnmse=0.08)
        >>> round(1 - result.best_tnmse / result.baseline_tnmse, 2), result.validated_tnmse
        (0.25, None)
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
    kernel: str = ""
