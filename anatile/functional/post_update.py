"""Once-per-step weight maintenance of hardware-aware training: clipping and remapping.

aihwkit's ``post_update_step`` rules (``WeightClipParameter``, ``WeightRemapParameter``),
as pure functions of the normalized array weights ``[out_size, in_size]`` and the
per-output mapping scales.
"""

from __future__ import annotations

import torch
from torch import Tensor

from anatile.config.parameters import (
    WeightClipParameter,
    WeightClipType,
    WeightRemapParameter,
    WeightRemapType,
)

__all__ = ["clip_value", "clip_weights", "remap_weights"]


def clip_value(weights: Tensor, clip: WeightClipParameter) -> float | None:
    """The clip bound of ``clip`` for ``weights`` (None: no clipping).

    ``FIXED_VALUE``: ``fixed_value``; ``LAYER_GAUSSIAN``: ``sigma · std(W)`` (sample std);
    ``AVERAGE_CHANNEL_MAX``: the mean over output rows of ``max_j |W_ij|``; the last two are
    capped at ``fixed_value`` when it is positive. A bound ≤ 0 means no clipping.

    Example:
        >>> from anatile.config import WeightClipParameter, WeightClipType
        >>> w = torch.tensor([[0.2, -0.9], [0.4, 0.1]])
        >>> clip_value(w, WeightClipParameter(type=WeightClipType.FIXED_VALUE, fixed_value=0.5))
        0.5
        >>> clip_value(w, WeightClipParameter()) is None  # type NONE
        True
    """
    if clip.type == WeightClipType.NONE:
        return None
    if clip.type == WeightClipType.FIXED_VALUE:
        value = float(clip.fixed_value)
    else:
        if clip.type == WeightClipType.LAYER_GAUSSIAN:
            value = float(weights.std()) * clip.sigma if weights.numel() > 1 else 0.0
        else:
            value = float(weights.abs().amax(dim=1).mean())
        if clip.fixed_value > 0:
            value = min(value, float(clip.fixed_value))
    return value if value > 0 else None


def clip_weights(weights: Tensor, clip: WeightClipParameter) -> Tensor:
    """``weights`` clipped at ``±clip_value(weights, clip)`` (a new tensor).

    Example:
        >>> from anatile.config import WeightClipParameter, WeightClipType
        >>> w = torch.tensor([[0.2, -0.9], [0.4, 0.1]])
        >>> clip_weights(w, WeightClipParameter(type=WeightClipType.FIXED_VALUE, fixed_value=0.5))
        tensor([[ 0.2000, -0.5000],
                [ 0.4000,  0.1000]])
    """
    value = clip_value(weights, clip)
    return weights.clone() if value is None else weights.clamp(-value, value)


def remap_weights(weights: Tensor, scales: Tensor, remap: WeightRemapParameter
                  ) -> tuple[Tensor, Tensor]:
    """Remap the array weights so their maximum is ``remapped_wmax``; the scales absorb it.

    The logical weights ``scales[:, None] · weights`` are unchanged (except with
    ``max_scale_range``, where a row whose scale would exceed the range keeps part of its
    excess in the weights).

    Args:
        weights: normalized array weights ``[out_size, in_size]``.
        scales: per-output scales ``[out_size]`` (a ``[1]`` scale is broadcast).
        remap: the remapping rule.

    Returns:
        ``(new_weights, new_scales)``, ``new_scales`` of shape ``[out_size]``.

    Example:
        >>> from anatile.config import WeightRemapParameter, WeightRemapType
        >>> w, s = torch.tensor([[0.5, -0.25]]), torch.tensor([1.0])
        >>> remap = WeightRemapParameter(type=WeightRemapType.LAYERWISE_SYMMETRIC)
        >>> w2, s2 = remap_weights(w, s, remap)
        >>> w2, s2  # max|W| becomes remapped_wmax (1.0); the scale absorbs the factor
        (tensor([[ 1.0000, -0.5000]]), tensor([0.5000]))
    """
    scales = scales.to(weights.dtype).reshape(-1).expand(weights.shape[0]).clone()
    if remap.type == WeightRemapType.NONE:
        return weights.clone(), scales
    if remap.type == WeightRemapType.LAYERWISE_SYMMETRIC:
        amax = float(weights.abs().max()) / remap.remapped_wmax if weights.numel() else 0.0
        if amax > 0:
            return weights / amax, scales * amax
        return weights.clone(), scales
    row_max = weights.abs().amax(dim=1)
    if remap.max_scale_range <= 0:
        factor = row_max / remap.remapped_wmax
        factor = torch.where(factor > 0, factor, torch.ones_like(factor))
        return weights / factor.unsqueeze(1), scales * factor
    old = scales
    min_scale = max(float(old.min()), 0.0)
    if min_scale > 0 and remap.max_scale_ref:
        min_scale = max(min_scale, remap.max_scale_ref)
    new = torch.where(row_max > 0, row_max * old, old)
    if min_scale > 0:
        limit = min_scale * remap.max_scale_range
        new = torch.where(new / min_scale > remap.max_scale_range,
                          torch.full_like(new, limit), new)
    return weights * (old / new).unsqueeze(1), new
