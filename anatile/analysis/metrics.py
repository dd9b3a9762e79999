"""The error metrics of anatile, defined once: names, symbols, units and formulas.

Every number that says how far analog weights or outputs are from their ideal uses one of
these, and every label shows the metric's name and unit (:attr:`Metric.label`). The page
``docs/metrics.md`` documents them; in short, with ``W`` the target (logical) weights,
``W̃`` the weights the hardware applies, ``y``/``ỹ`` the ideal/analog outputs:

* weight error NRMSE_W = ``sqrt(mean((W̃ − W)²)) / max|W|``, in % of max|W|;
* weight MSE NMSE_W = ``mean((W̃ − W)²) / max|W|²``, in (max|W|)²;
* max weight error MAXE_W = ``max|W̃ − W| / max|W|``, in % of max|W|;
* TNMSE = ``100 · mean_t NMSE_W(t)``, in (max|W|/10)²;
* output error NRMSE_y = ``sqrt(mean((ỹ − y)²)) / max|y|``, in % of max|y|;
* output MSE NMSE_y = ``mean((ỹ − y)²) / max|y|²``, in (max|y|)²;
* accuracy drop Δacc = ``acc_ideal − acc_analog``, in percentage points.

The squared forms (NMSE) are the ones that add: independent error sources add their
NMSE, which is why error budgets are reported in NMSE. TNMSE is the Weight Programming
Optimizer's objective (Mackin et al. 2022): ``(10 · error / max|W|)²`` averaged over the
weights and the inference times, i.e. 100 × the time-averaged NMSE_W.

Example:
    >>> import torch
    >>> w = torch.tensor([[1.0, -0.5], [0.25, 0.0]])
    >>> round(float(weight_nrmse(w + 0.1, w)), 6)
    0.1
    >>> WEIGHT_NRMSE.label
    'weight error NRMSE_W (% of max|W|)'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "ACCURACY_DROP",
    "METRICS",
    "OUTPUT_NMSE",
    "OUTPUT_NRMSE",
    "TNMSE",
    "WEIGHT_MAX_ERROR",
    "WEIGHT_NMSE",
    "WEIGHT_NRMSE",
    "Metric",
    "nmse",
    "output_nrmse",
    "tnmse",
    "weight_max_error",
    "weight_nmse",
    "weight_nrmse",
]

# max|reference| below this is treated as this (an all-zero reference has no scale).
_TINY = 1e-30


@dataclass(frozen=True)
class Metric:
    """Name, symbol and unit of one metric (for labels, tables and docs).

    Attributes:
        key: short identifier (``"weight_nrmse"``).
        name: words for a label (``"weight error"``).
        symbol: the symbol used in the docs (``"NRMSE_W"``).
        unit: the unit (``"% of max|W|"``); a value is shown in this unit by :meth:`format`.
        percent: whether values are fractions shown in percent.

    Example:
        >>> metric = METRICS["weight_nrmse"]
        >>> isinstance(metric, Metric), metric.symbol, metric.unit
        (True, 'NRMSE_W', '% of max|W|')
    """

    key: str
    name: str
    symbol: str
    unit: str
    percent: bool = False

    @property
    def label(self) -> str:
        """``"name symbol (unit)"``, the axis/column label every view should show."""
        return f"{self.name} {self.symbol} ({self.unit})"

    def format(self, value: float, digits: int = 3) -> str:
        """A value with its unit, e.g. ``"4.21 % of max|W|"`` (fractions shown in %)."""
        if self.percent:
            return f"{100.0 * value:.{digits}g} {self.unit}"
        return f"{value:.{digits}g} {self.unit}"


WEIGHT_NRMSE = Metric("weight_nrmse", "weight error", "NRMSE_W", "% of max|W|", percent=True)
WEIGHT_NMSE = Metric("weight_nmse", "weight MSE", "NMSE_W", "(max|W|)²")
WEIGHT_MAX_ERROR = Metric("weight_max_error", "max weight error", "MAXE_W", "% of max|W|",
                          percent=True)
TNMSE = Metric("tnmse", "time-averaged weight MSE", "TNMSE", "(max|W|/10)²")
OUTPUT_NRMSE = Metric("output_nrmse", "output error", "NRMSE_y", "% of max|y|", percent=True)
OUTPUT_NMSE = Metric("output_nmse", "output MSE", "NMSE_y", "(max|y|)²")
ACCURACY_DROP = Metric("accuracy_drop", "accuracy drop", "Δacc", "percentage points",
                       percent=True)

METRICS: dict[str, Metric] = {
    m.key: m
    for m in (WEIGHT_NRMSE, WEIGHT_NMSE, WEIGHT_MAX_ERROR, TNMSE, OUTPUT_NRMSE, OUTPUT_NMSE,
              ACCURACY_DROP)
}
"""Every metric by key."""


def _check_pair(estimate: Tensor, reference: Tensor) -> None:
    for name, t in (("estimate", estimate), ("reference", reference)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got {t.dtype}")
    try:
        torch.broadcast_shapes(estimate.shape, reference.shape)
    except RuntimeError:
        raise ValueError(
            f"estimate, reference: shapes {tuple(estimate.shape)} and "
            f"{tuple(reference.shape)} do not broadcast"
        ) from None


def _scale(reference: Tensor, scale: float | Tensor | None) -> Tensor:
    if scale is None:
        scale = reference.detach().abs().max()
    s = torch.as_tensor(scale, dtype=torch.float64, device=reference.device)
    return s.clamp(min=_TINY)


def nmse(
    estimate: Tensor,
    reference: Tensor,
    *,
    scale: float | Tensor | None = None,
    batch_dims: int = 0,
) -> Tensor:
    """Normalized mean squared error ``mean((estimate − reference)²) / scale²`` (float64).

    Args:
        estimate: the analog weights or outputs.
        reference: the ideal ones (broadcast against ``estimate``).
        scale: the normalization (default ``max|reference|``).
        batch_dims: leading dimensions of ``estimate`` kept in the result (e.g. 1 for
            ``[n_times, out, in]`` estimates); the mean runs over the rest.

    Returns:
        A float64 tensor of shape ``estimate.shape[:batch_dims]``.

    Raises:
        TypeError: if a tensor is not floating point.
        ValueError: if the shapes do not broadcast or ``batch_dims`` is out of range.

    Example:
        >>> est, ref = torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0])
        >>> nmse(est, ref)  # mean((est − ref)²) / max|ref|²
        tensor(0.5000, dtype=torch.float64)
        >>> nmse(est, ref, scale=2.0)
        tensor(0.1250, dtype=torch.float64)
    """
    _check_pair(estimate, reference)
    if isinstance(batch_dims, bool) or not isinstance(batch_dims, int) or not (
        0 <= batch_dims <= estimate.dim()
    ):
        raise ValueError(
            f"batch_dims: expected an int in [0, {estimate.dim()}], got {batch_dims!r}"
        )
    s = _scale(reference, scale)
    # the difference and its (pairwise-summed) norm in the inputs' precision, then float64:
    # relative error ~1e-7 for float32, without a float64 copy of large estimates
    diff = estimate.detach() - reference.detach()
    dims = tuple(range(batch_dims, diff.dim()))
    if dims:
        count = 1
        for d in dims:
            count *= diff.shape[d]
        norm = torch.linalg.vector_norm(diff, ord=2, dim=dims)
        mean = norm.to(torch.float64).square() / count
    else:
        mean = diff.to(torch.float64).square()
    return mean / s.square()


def weight_nmse(weights: Tensor, target: Tensor, *, batch_dims: int = 0) -> Tensor:
    """NMSE_W: ``mean((W̃ − W)²) / max|W|²`` (see :func:`nmse`).

    Example:
        >>> weight_nmse(torch.tensor([0.9, -2.0]), torch.tensor([1.0, -2.0]))  # 0.005 / 2²
        tensor(0.0013, dtype=torch.float64)
    """
    return nmse(weights, target, batch_dims=batch_dims)


def weight_nrmse(weights: Tensor, target: Tensor, *, batch_dims: int = 0) -> Tensor:
    """NRMSE_W, the weight error: ``sqrt(mean((W̃ − W)²)) / max|W|`` (a fraction; × 100 for %).

    Example:
        >>> w = torch.tensor([1.0, -2.0])
        >>> weight_nrmse(w + torch.tensor([0.2, 0.0]), w)  # sqrt(0.02) / 2
        tensor(0.0707, dtype=torch.float64)
    """
    return nmse(weights, target, batch_dims=batch_dims).sqrt()


def weight_max_error(weights: Tensor, target: Tensor) -> Tensor:
    """MAXE_W: ``max|W̃ − W| / max|W|`` (float64 scalar).

    Example:
        >>> weight_max_error(torch.tensor([0.9, -2.0]), torch.tensor([1.0, -2.0]))
        tensor(0.0500, dtype=torch.float64)
    """
    _check_pair(weights, target)
    diff = (weights.detach().to(torch.float64) - target.detach().to(torch.float64)).abs()
    return diff.max() / _scale(target, None)


def tnmse(weights_over_time: Tensor | Sequence[Tensor], target: Tensor) -> Tensor:
    """TNMSE, the WPO objective: ``100 · mean_t NMSE_W(t)`` (float64 scalar).

    Args:
        weights_over_time: ``[n_times, *target.shape]`` effective weights (drift
            compensation applied), or a sequence of such tensors.
        target: the target weights.

    Raises:
        ValueError: if there is no time step or a shape does not match.
    """
    if not isinstance(weights_over_time, Tensor):
        items = list(weights_over_time)
        if not items:
            raise ValueError("weights_over_time: expected at least one time step")
        weights_over_time = torch.stack([w.detach().to(torch.float64) for w in items])
    if weights_over_time.dim() != target.dim() + 1 or weights_over_time.shape[0] == 0:
        raise ValueError(
            f"weights_over_time: expected shape [n_times, {', '.join(map(str, target.shape))}]"
            f", got {tuple(weights_over_time.shape)}"
        )
    return 100.0 * nmse(weights_over_time, target, batch_dims=1).mean()


def output_nrmse(outputs: Tensor, ideal: Tensor) -> Tensor:
    """NRMSE_y, the output error: ``sqrt(mean((ỹ − y)²)) / max|y|`` (float64 scalar).

    Example:
        >>> output_nrmse(torch.tensor([1.0, 2.1]), torch.tensor([1.0, 2.0]))  # sqrt(0.005) / 2
        tensor(0.0354, dtype=torch.float64)
    """
    return nmse(outputs, ideal).sqrt()
