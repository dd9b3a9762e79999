"""Typed progress events of the Weight Programming Optimizer.

Subscribe with ``optimizer.events.subscribe(callback)``; a callback receives each event in
emission order: :class:`OptimizerStarted`, :class:`BaselineMeasured`, one
:class:`GenerationFinished` per generation, :class:`OptimizerFinished`. A callback that
returns True or raises :class:`StopIteration` on a :class:`GenerationFinished` ends the run
after that generation with the best strategy found so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anatile.events import Event

__all__ = ["BaselineMeasured", "GenerationFinished", "OptimizerFinished", "OptimizerStarted"]


@dataclass(frozen=True)
class OptimizerStarted(Event):
    """The run begins.

    Attributes:
        n_dims: hypercube dimensions of the search.
        n_candidates: candidates per generation (``popsize · n_dims``).
        maxiter: generation limit.
        vectorized: whether the batched whole-population loss is used.
        device: where the batched loss runs ("cpu", "cuda", ...).

    Example:
        >>> from anatile.events import EventHub
        >>> hub, seen = EventHub(), []
        >>> sub = hub.subscribe(lambda e: isinstance(e, OptimizerStarted) and seen.append(e.n_dims))
        >>> hub.emit(OptimizerStarted(source=None, n_dims=21, n_candidates=2100, maxiter=200,
        ...                           vectorized=True, device="cpu"))
        False
        >>> seen
        [21]
    """

    n_dims: int
    n_candidates: int
    maxiter: int
    vectorized: bool
    device: str


@dataclass(frozen=True)
class BaselineMeasured(Event):
    """The baseline converter's TNMSE is known.

    Attributes:
        baseline_tnmse: the TNMSE to beat (averaged over ``baseline_iterations``).
        target_tnmse: ``baseline_tnmse · (1 − loss_margin)``, where the loss turns negative.
        converter: class name of the baseline converter.
        elapsed_s: seconds since the run started.

    Example:
        >>> event = BaselineMeasured(source=None, baseline_tnmse=0.08, target_tnmse=0.07,
        ...                          converter="DualPairConductanceConverter", elapsed_s=1.5)
        >>> event.target_tnmse < event.baseline_tnmse
        True
    """

    baseline_tnmse: float
    target_tnmse: float
    converter: str
    elapsed_s: float


@dataclass(frozen=True)
class GenerationFinished(Event):
    """One differential-evolution generation is done.

    Attributes:
        generation: 1-based generation number.
        best_loss: best loss so far, ``(TNMSE − baseline)/baseline + loss_margin``.
        population_losses: loss of every population member (a copy).
        best_f_lst: f factors of the best strategy.
        best_g_lst: conductance lists (µS) of the best strategy.
        best_tnmse: TNMSE of the best strategy.
        elapsed_s: seconds since the run started.
        eta_s: estimated seconds to ``maxiter`` at the mean generation time so far.

    Example:
        >>> import numpy as np
        >>> def stop_when_beaten(event):  # a subscriber that ends the run
        ...     return isinstance(event, GenerationFinished) and event.best_loss < 0
        >>> event = GenerationFinished(source=None, generation=3, best_loss=-0.01,
        ...                            population_losses=np.zeros(4), best_f_lst=[1.0, 3.0],
        ...                            best_g_lst=[], best_tnmse=0.06, elapsed_s=2.0, eta_s=10.0)
        >>> stop_when_beaten(event)
        True
    """

    generation: int
    best_loss: float
    population_losses: np.ndarray
    best_f_lst: list[float]
    best_g_lst: list[list[float]]
    best_tnmse: float
    elapsed_s: float
    eta_s: float


@dataclass(frozen=True)
class OptimizerFinished(Event):
    """The run is over; ``result`` is the :class:`~anatile.wpo.WPOResult`.

    Example:
        >>> from anatile.inference import CustomPairConductanceConverter
        >>> conv = CustomPairConductanceConverter([1.0], [[0.0, 0.0, 25.0], [25.0, 0.0, 0.0]])
        >>> result = WPOResult(converter=conv, success=True, best_tnmse=0.06, baseline_tnmse=0.08)
        >>> OptimizerFinished(source=None, result=result).result.success
        True
    """

    result: Any
