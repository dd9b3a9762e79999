"""Steps after the search: polish the best strategy, validate it on fresh noise.

Both run on the batched objective (:class:`~anatile.wpo.objective.WPOObjective`) and say
for every evaluation whether the candidates share one noise draw.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.optimize import minimize

from anatile.wpo.loss import relative_loss
from anatile.wpo.objective import WPOObjective

__all__ = ["polish", "validate"]

_log = logging.getLogger(__name__)

#: forward-difference step of the polish's gradient (hypercube units)
STEP = 1e-4
#: fresh draws of the final comparison of the polished and the starting point
COMPARISON_REPEATS = 4


def polish(
    objective: WPOObjective,
    x0: np.ndarray,
    fun0: float,
    bounds: tuple[tuple[float, float], ...],
    loss_baseline: float,
    generator: torch.Generator,
) -> tuple[np.ndarray, float, bool]:
    """L-BFGS-B from the best candidate on a fixed-noise (sample-average) loss.

    A noisy loss has no usable finite-difference gradient, so the polish minimizes
    the loss under one fixed noise draw (the gradient is one batched call of ``D + 1``
    candidates sharing that draw). The polished point is kept only if it also wins on
    fresh noise against the starting point (each point averaged over independent draws).

    Args:
        objective: the batched objective.
        x0: the best point of the search; ``fun0`` its relative loss.
        fun0: its relative loss.
        bounds: the unit hypercube.
        loss_baseline: the baseline TNMSE.
        generator: random source of the final comparison.

    Returns:
        ``(x, relative loss, polished)``: the polished point when it wins, else ``x0``.
    """
    opts = objective.options
    margin = opts.loss_margin
    device = objective.problem.device
    seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(
        opts.seed + 1)).item())

    def fixed(points: np.ndarray) -> np.ndarray:
        vals = objective.evaluate(points, common_noise=True,
                                  generator=torch.Generator(device).manual_seed(seed))
        return relative_loss(vals, loss_baseline, margin)

    def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        dim = x.size
        pts = np.repeat(x[None, :], dim + 1, axis=0)
        # forward differences, backward at the upper bound
        h = np.where(x + STEP <= 1.0, STEP, -STEP)
        pts[1 + np.arange(dim), np.arange(dim)] += h
        vals = fixed(pts)
        return float(vals[0]), (vals[1:] - vals[0]) / h

    try:
        res = minimize(fun_and_grad, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": opts.polish_maxiter})
    except (ValueError, RuntimeError, FloatingPointError):  # pragma: no cover - defensive
        _log.warning("polish failed; keeping the differential-evolution result", exc_info=True)
        return x0, fun0, False
    x1 = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, 1.0)
    if np.allclose(x1, x0):
        return x0, fun0, False
    # fair comparison on fresh noise, averaged over a few independent draws
    n = COMPARISON_REPEATS
    pts = np.concatenate([np.repeat(x0[None], n, 0), np.repeat(x1[None], n, 0)])
    vals = objective.evaluate(pts, common_noise=False, generator=generator)
    t0, t1 = float(vals[:n].mean()), float(vals[n:].mean())
    if t1 < t0:
        return x1, float(relative_loss(t1, loss_baseline, margin)), True
    return x0, fun0, False


def validate(objective: WPOObjective, x: np.ndarray, repeats: int,
             generator: torch.Generator) -> float:
    """Mean TNMSE of point ``x`` over ``repeats`` independent noise draws."""
    points = np.repeat(np.asarray(x, dtype=np.float64)[None], repeats, 0)
    return float(objective.evaluate(points, common_noise=False, generator=generator).mean())
