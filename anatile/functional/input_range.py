"""Learned input range: clipping, its straight-through gradient and data initialization.

Forward: ``x ← clamp(x, −r, r)`` (the tile then divides by ``r`` before the DAC and
multiplies the output back by ``r``). The gradient of ``r`` is a straight-through estimate
(see :func:`input_range_gradient`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from anatile.config.parameters import InputRangeParameter

__all__ = ["clip_input", "input_range_data_init", "input_range_gradient"]


def clip_input(x: Tensor, r: Tensor) -> Tensor:
    """``clamp(x, −r, r)`` with a 1-element tensor ``r``.

    Args:
        x: any shape.
        r: ``[1]`` positive input range.

    Returns:
        Tensor of the shape of ``x``.

    Example:
        >>> clip_input(torch.tensor([-3.0, 0.5, 2.0]), torch.tensor([1.0]))
        tensor([-1.0000,  0.5000,  1.0000])
    """
    return torch.minimum(torch.maximum(x, -r), r)


def input_range_gradient(
    x: Tensor,
    grad_output: Tensor,
    r: Tensor,
    cfg: InputRangeParameter,
    unclipped_output_fraction: float | None = None,
) -> Tensor:
    """Straight-through gradient of the input range ``r``.

    ``g = Σ_{x ≥ r} min(grad, 0) − Σ_{x ≤ −r} max(grad, 0)``; times ``r·gradient_scale``
    when ``gradient_relative`` (else times ``gradient_scale``); plus ``decay·r`` when the
    fraction of unclipped inputs exceeds ``input_min_percentage``; with
    ``manage_output_clipping``, minus ``(1 − p)·r`` when the unclipped output fraction ``p``
    is below ``output_min_percentage``.

    Args:
        x: the inputs before clipping.
        grad_output: gradient w.r.t. the clipped inputs (same shape as ``x``).
        r: ``[1]`` the input range.
        cfg: input range parameters.
        unclipped_output_fraction: ``p`` for output clipping management (None: unknown).

    Returns:
        ``[1]`` gradient of ``r``.

    Example:
        >>> from anatile.config import InputRangeParameter
        >>> cfg, r = InputRangeParameter(enable=True), torch.tensor([1.0])
        >>> # a clipped input whose loss falls as it grows: descent widens r
        >>> input_range_gradient(torch.tensor([[2.0]]), torch.tensor([[-1.0]]), r, cfg)
        tensor([-1.])
        >>> # nothing clipped: only the decay, which narrows r
        >>> input_range_gradient(torch.tensor([[0.5]]), torch.tensor([[-1.0]]), r, cfg)
        tensor([0.0010])
    """
    upper = x >= r
    lower = x <= -r
    grad = (grad_output.clamp(max=0.0) * upper).sum() - (grad_output.clamp(min=0.0) * lower).sum()
    grad = grad * (r * cfg.gradient_scale if cfg.gradient_relative else cfg.gradient_scale)
    unclipped = 1.0 - float((upper | lower).sum()) / max(x.numel(), 1)
    if unclipped > cfg.input_min_percentage:
        grad = grad + cfg.decay * r
    if (
        cfg.manage_output_clipping
        and unclipped_output_fraction is not None
        and unclipped_output_fraction < cfg.output_min_percentage
    ):
        grad = grad - (1.0 - unclipped_output_fraction) * r
    return grad.reshape(1)


def input_range_data_init(r: Tensor, x: Tensor, count: int, std_alpha: float) -> Tensor:
    """Running mean of ``std_alpha · std(x)`` over the first batches.

    Args:
        r: ``[1]`` current input range (the mean over ``count`` previous batches).
        x: the batch.
        count: number of batches already averaged into ``r`` (0: ``r`` is ignored).
        std_alpha: ``init_std_alpha``.

    Returns:
        ``[1]`` new input range ``(r·count + std_alpha·std(x)) / (count + 1)``.

    Example:
        >>> x = torch.tensor([[-1.0, 1.0]])  # std(x) = √2
        >>> input_range_data_init(torch.tensor([0.0]), x, count=0, std_alpha=3.0)
        tensor([4.2426])
    """
    value = std_alpha * x.detach().float().std().to(r.dtype).reshape(1)
    if count == 0:
        return value
    return (r.detach() * count + value) / (count + 1)
