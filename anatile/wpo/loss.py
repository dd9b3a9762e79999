"""WPO losses: the per-candidate reference path (a test tile per candidate) and the batched
whole-population objective.

Both compute the time-averaged normalized mean squared error

``TNMSE = Σ_t Σ_ij (10·(alpha_t·W_eff,t − W)_ij / max|W|)² / (n_weights·len(t_steps))``

where every time step re-programs the devices (fresh programming noise and drift
exponents), drifts them to ``t`` (drift and read noise) and applies drift compensation
``alpha_t``; the optimizer minimizes ``(TNMSE − baseline) / baseline + loss_margin``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from anatile.inference import CustomPairConductanceConverter
from anatile.nn import AnalogLinear
from anatile.tiles import InferenceTile
from anatile.wpo.batched import ERROR_AMPLIFICATION, BatchedTNMSE
from anatile.wpo.encoding import SearchSpace, decode_batch, denormalize

__all__ = [
    "BatchedObjective",
    "LossContext",
    "loss_fxn",
    "loss_rpu_config",
    "loss_weights",
    "relative_loss",
    "tnmse_from_loss",
]


def relative_loss(tnmse: Any, loss_baseline: float, loss_margin: float) -> Any:
    """``(tnmse − baseline) / baseline + margin`` (negative once the margin is beaten).

    The one definition of the search's loss; ``tnmse`` may be a float or an array.

    Example:
        >>> round(relative_loss(0.08, loss_baseline=0.1, loss_margin=0.125), 6)  # 20 % better
        -0.075
    """
    return (tnmse - loss_baseline) / loss_baseline + loss_margin


def tnmse_from_loss(loss: Any, loss_baseline: float, loss_margin: float) -> Any:
    """Inverse of :func:`relative_loss`: the TNMSE of a loss (floats or numpy arrays).

    Example:
        >>> loss = relative_loss(0.08, loss_baseline=0.1, loss_margin=0.125)
        >>> round(tnmse_from_loss(loss, loss_baseline=0.1, loss_margin=0.125), 12)
        0.08
    """
    return (loss - loss_margin) * loss_baseline + loss_baseline


@dataclass(frozen=True)
class LossContext:
    """Everything the per-candidate loss needs; picklable, so worker processes get it.

    Attributes:
        space: the search space (decodes a hypercube point).
        rpu_config: the optimizer's copy of the inference configuration (output scaling
            and mapping off); each evaluation works on its own deep copy.
        t_steps: inference times (s).
        test_weights: the test weights, tile layout ``(out_features, in_features)``.
        max_abs_weight_unitless: ``max|test_weights|``.
        loss_baseline: baseline TNMSE (``inf`` until measured).
        loss_margin: margin by which the baseline is to be beaten.
        get_baseline: return the TNMSE itself instead of the relative loss.
        seed: base seed of the test tiles' generators.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.inference import DualPairConductanceConverter
        >>> options = WPOOptions(test_in_features=16, test_out_features=4, native=False,
        ...                      compile=False, device="cpu")
        >>> problem = WPOProblem.build(0.1 * torch.randn(500), [None, None], InferenceRPUConfig(),
        ...                            [1.0, 3600.0], DualPairConductanceConverter([1.0, 1.0]),
        ...                            True, options)
        >>> ctx = WPOObjective(problem, options).loss_context(get_baseline=True)
        >>> tnmse = loss_rpu_config(ctx)  # the baseline converter of the search copy
        >>> isinstance(ctx, LossContext), tnmse > 0
        (True, True)
    """

    space: SearchSpace
    rpu_config: Any
    t_steps: tuple[float, ...]
    test_weights: Tensor
    max_abs_weight_unitless: float
    loss_baseline: float = math.inf
    loss_margin: float = 0.125
    get_baseline: bool = False
    seed: int = 100

    @classmethod
    def from_mapping(cls, d: LossContext | Mapping[str, Any]) -> LossContext:
        """Accept a :class:`LossContext` or a mapping with its field names.

        Raises:
            KeyError: if a required key is missing.
        """
        if isinstance(d, LossContext):
            return d
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in names}
        values["space"] = SearchSpace.from_mapping(d["space"] if "space" in d else d)
        values["t_steps"] = tuple(float(t) for t in values["t_steps"])
        values["max_abs_weight_unitless"] = float(values["max_abs_weight_unitless"])
        return cls(**values)


def _unpack(args: Sequence[Any]) -> LossContext:
    if not args:
        raise TypeError("loss_fxn: expected the loss context as the first extra argument")
    d = args[0]
    if isinstance(d, (bytes, bytearray)):
        d = pickle.loads(d)  # trusted: produced by the optimizer itself
    return LossContext.from_mapping(d)


def _seed_for(x: np.ndarray, seed: int) -> int:
    digest = hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes()
                            + int(seed).to_bytes(8, "little")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def loss_fxn(x: np.ndarray | Sequence[float], *args: Any) -> float:
    """Loss of one hypercube point through a freshly built test tile (reference path).

    A top-level function so that scipy's ``workers`` (a process pool or an executor's
    ``map``) can ship it; its noise seed derives from ``x`` and the context's seed, so a
    candidate's loss does not depend on which worker evaluates it.

    Args:
        x: hypercube point, shape ``(D,)``.
        args: the :class:`LossContext` (or a mapping with its fields, or its pickle).

    Returns:
        ``(TNMSE − baseline) / baseline + loss_margin`` (the TNMSE itself when the context
        says ``get_baseline``).

    Raises:
        TypeError: without a context.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.inference import DualPairConductanceConverter
        >>> options = WPOOptions(test_in_features=16, test_out_features=4, native=False,
        ...                      compile=False, device="cpu")
        >>> problem = WPOProblem.build(0.1 * torch.randn(500), [None, None], InferenceRPUConfig(),
        ...                            [1.0, 3600.0], DualPairConductanceConverter([1.0, 1.0]),
        ...                            True, options)
        >>> ctx = WPOObjective(problem, options).loss_context(get_baseline=True)
        >>> tnmse = loss_fxn(problem.baseline_point(), ctx)  # one candidate, one new test tile
        >>> tnmse > 0
        True
    """
    ctx = _unpack(args)
    xa = np.asarray(x, dtype=np.float64).reshape(-1)
    f_lst, g_lst = denormalize(xa, ctx.space)
    converter = CustomPairConductanceConverter(
        list(f_lst), [list(g) for g in g_lst], g_max=ctx.space.g_max, g_min=ctx.space.g_min,
        invertibility_test=False,
    )
    rpu_config = copy.deepcopy(ctx.rpu_config)
    rpu_config.noise_model.g_converter = converter
    return loss_rpu_config(dataclasses.replace(ctx, rpu_config=rpu_config,
                                               seed=_seed_for(xa, ctx.seed)))


def loss_rpu_config(d: LossContext | Mapping[str, Any]) -> float:
    """TNMSE (or relative loss) of the converter in ``d.rpu_config`` on a new test tile.

    Builds a test layer (an :class:`~anatile.nn.AnalogLinear` without bias, whose tile is an
    :class:`~anatile.tiles.InferenceTile`) of the test-layer size with a deep copy of the
    configuration and a generator seeded with ``d.seed``, then runs :func:`loss_weights`.

    Args:
        d: the :class:`LossContext` (or a mapping with its fields).

    Returns:
        The TNMSE if ``d.get_baseline`` else the relative loss.

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.inference import DualPairConductanceConverter
        >>> options = WPOOptions(test_in_features=16, test_out_features=4, native=False,
        ...                      compile=False, device="cpu")
        >>> problem = WPOProblem.build(0.1 * torch.randn(500), [None, None], InferenceRPUConfig(),
        ...                            [1.0, 3600.0], DualPairConductanceConverter([1.0, 1.0]),
        ...                            True, options)
        >>> ctx = WPOObjective(problem, options).loss_context(get_baseline=True)
        >>> loss_rpu_config(ctx) > 0  # TNMSE of the configuration's own converter
        True
    """
    ctx = LossContext.from_mapping(d)
    out_features, in_features = ctx.test_weights.shape
    rpu_config = copy.deepcopy(ctx.rpu_config)
    # the test layer is one tile of the test-layer size, whatever the mapping limits
    rpu_config.mapping.max_input_size = 0
    rpu_config.mapping.max_output_size = 0
    layer = AnalogLinear(int(in_features), int(out_features), bias=False,
                         rpu_config=rpu_config, seed=int(ctx.seed))
    layer.eval()
    return loss_weights(layer, list(ctx.t_steps), ctx.test_weights,
                        ctx.max_abs_weight_unitless, ctx.loss_baseline, ctx.loss_margin,
                        get_baseline=ctx.get_baseline)


@torch.no_grad()
def loss_weights(
    model: nn.Module,
    t_steps: Sequence[float],
    test_weights: Tensor,
    max_abs_weight_unitless: float,
    loss_baseline: float,
    loss_margin: float,
    get_baseline: bool = False,
) -> float:
    """TNMSE of the test weights on the inference tile of ``model``.

    For every time step the tile is re-programmed (fresh programming noise and drift
    exponents), drifted to ``t`` and read: ``W_eff = alpha · W_read`` with the tile's drift
    compensation ``alpha`` (one value, or one per output row of the weight matrix).

    Args:
        model: an :class:`~anatile.tiles.InferenceTile` or a module holding exactly one
            (e.g. an analog layer converted with an ``InferenceRPUConfig``).
        t_steps: inference times (s).
        test_weights: target weights in tile layout ``(out_features, in_features)``.
        max_abs_weight_unitless: normalization ``max|W|``.
        loss_baseline: baseline TNMSE.
        loss_margin: margin to beat the baseline by.
        get_baseline: return the TNMSE instead of the relative loss.

    Returns:
        The TNMSE (``inf`` if not finite) or ``(TNMSE − baseline)/baseline + margin``.

    Raises:
        TypeError: if ``model`` holds no or several inference tiles.

    Example:
        >>> from anatile.tiles import InferenceTile
        >>> tile = InferenceTile(4, 16, seed=0)
        >>> w = 0.1 * torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
        >>> tnmse = loss_weights(tile, [1.0, 3600.0], w, float(w.abs().max()), loss_baseline=1.0,
        ...                      loss_margin=0.125, get_baseline=True)
        >>> 0.0 < tnmse < 1.0
        True
    """
    tiles = [m for m in model.modules() if isinstance(m, InferenceTile)]
    if len(tiles) != 1:
        raise TypeError(f"model: expected exactly one InferenceTile, found {len(tiles)}")
    tile = tiles[0]
    target = test_weights.detach().to(tile.device, torch.float32)
    tile.set_weights(target.clone())
    total = 0.0
    scale = ERROR_AMPLIFICATION / float(max_abs_weight_unitless)
    for t in t_steps:
        tile.program_weights()  # fresh programming noise and drift exponents
        tile.drift_weights(float(t))  # drift + read noise + drift compensation alpha
        eff = tile.effective_weights(apply_weight_scaling=True).to(torch.float64)
        total += float((((eff - target.cpu().to(torch.float64)) * scale) ** 2).sum())
    tnmse = total / (target.numel() * len(t_steps))
    if not math.isfinite(tnmse):
        tnmse = math.inf
    return tnmse if get_baseline else relative_loss(tnmse, loss_baseline, loss_margin)


class BatchedObjective:
    """The whole-population loss for ``differential_evolution(..., vectorized=True)``.

    With ``paired`` (and the engine's common random numbers), every generation's call also
    re-evaluates each trial's parent — scipy compares trial ``i`` with population member
    ``i`` — under the same noise draw, and a trial that does not beat its parent on that
    draw is returned as ``inf`` (rejected). scipy then replaces a parent only when the
    trial wins both the paired comparison and the comparison with the parent's stored
    loss. Without it, a generation whose shared draw happens to be favourable lets almost
    every trial replace its parent, better or not, and the search drifts away from good
    points. (Storing ``parent loss + paired difference`` instead is unusable: for poor
    strategies the loss is heavy-tailed and one unlucky parent draw produces absurdly low
    estimates.) The current population reaches the objective through :meth:`observe`
    (the generation callback's ``population`` / ``population_energies``); the first
    generation follows the initial population with scipy's promotion of the best member
    to index 0.

    Args:
        space: the search space.
        engine: the batched TNMSE evaluator.
        generator: random source of the noise draws (on the engine's device).
        loss_baseline: baseline TNMSE.
        loss_margin: margin to beat the baseline by.
        paired: paired selection as above (costs one more evaluation per trial).

    Attributes:
        n_calls: number of calls so far.
        n_candidates: candidates evaluated so far (parents re-evaluated included).

    Example:
        >>> from anatile.config import InferenceRPUConfig
        >>> from anatile.inference import DualPairConductanceConverter
        >>> options = WPOOptions(test_in_features=16, test_out_features=4, native=False,
        ...                      compile=False, device="cpu")
        >>> problem = WPOProblem.build(0.1 * torch.randn(500), [None, None], InferenceRPUConfig(),
        ...                            [1.0, 3600.0], DualPairConductanceConverter([1.0, 1.0]),
        ...                            True, options)
        >>> engine = WPOObjective(problem, options).engine
        >>> objective = BatchedObjective(problem.space, engine, torch.Generator().manual_seed(0),
        ...                              loss_baseline=0.1, loss_margin=0.125)
        >>> x = torch.rand(21, 3, generator=torch.Generator().manual_seed(1)).numpy()  # (D, S)
        >>> objective(x).shape, objective.n_candidates  # scipy's vectorized call
        ((3,), 3)
    """

    def __init__(self, space: SearchSpace, engine: BatchedTNMSE, generator: torch.Generator,
                 loss_baseline: float, loss_margin: float, paired: bool = False) -> None:
        self.space = space
        self.engine = engine
        self.generator = generator
        self.loss_baseline = loss_baseline
        self.loss_margin = loss_margin
        self.paired = paired
        self.n_calls = 0
        self.n_candidates = 0
        self._parents: np.ndarray | None = None
        self._parent_losses: np.ndarray | None = None

    def tnmse(self, x: np.ndarray, generator: torch.Generator | None = None) -> np.ndarray:
        """TNMSE of candidates ``x`` shaped ``(S, D)`` (float64 numpy ``(S,)``)."""
        f, g_table = decode_batch(np.atleast_2d(x), self.space)
        out = self.engine(f, g_table, self.generator if generator is None else generator)
        self.n_calls += 1
        self.n_candidates += int(f.shape[0])
        return out.cpu().numpy()

    def relative(self, tnmse: np.ndarray) -> np.ndarray:
        """``(tnmse − baseline) / baseline + margin``."""
        return relative_loss(tnmse, self.loss_baseline, self.loss_margin)

    def observe(self, population: np.ndarray, losses: np.ndarray) -> None:
        """The current population (scipy's order) and its stored losses."""
        self._parents = np.array(population, dtype=np.float64, copy=True)
        self._parent_losses = np.array(losses, dtype=np.float64, copy=True)

    def __call__(self, x: np.ndarray) -> np.ndarray | float:
        """Relative losses; ``x`` is ``(D, S)`` as scipy's vectorized mode sends it, or
        ``(D,)`` for a single point (then a float is returned)."""
        xa = np.asarray(x, dtype=np.float64)
        if xa.ndim == 1:
            return float(self.relative(self.tnmse(xa[None, :]))[0])
        pts = xa.T
        parents, stored = self._parents, self._parent_losses
        if (self.paired and self.engine.common_random_numbers and parents is not None
                and stored is not None and parents.shape == pts.shape):
            both = self.relative(self.tnmse(np.concatenate([pts, parents])))
            trial, parent = both[: len(pts)], both[len(pts):]
            # a trial that loses to its parent on the same draw is rejected outright
            return np.where(trial < parent, trial, np.inf)
        losses = self.relative(self.tnmse(pts))
        if self._parents is None:  # scipy's initial population, best promoted to index 0
            self.observe(pts, losses)
            assert self._parents is not None and self._parent_losses is not None
            best = int(np.argmin(losses))
            for arr in (self._parents, self._parent_losses):
                arr[[0, best]] = arr[[best, 0]]
        return losses
