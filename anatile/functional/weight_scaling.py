"""Digital weight scaling (mapping scales) between logical and array weights.

The array holds ``W / alpha``; the periphery multiplies the analog output by ``alpha``.
With ``omega > 0``: layer-wise ``alpha = max|W| / omega`` (a 1-element tensor) or column-wise
``alpha_i = max_j |W_ij| / omega`` (one per output); zeros become 1. With ``omega == 0``
no scaling is done (``alpha = 1``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["learning_rate_scale", "mapping_scales", "scale_rows"]


def mapping_scales(weight: Tensor, omega: float, columnwise: bool) -> Tensor:
    """Mapping scales ``alpha`` of a logical weight matrix.

    Args:
        weight: logical weights ``[out, in]`` (an analog bias column included, if any).
        omega: where ``max|W|`` lands on the array; 0 disables scaling (all ones).
        columnwise: one scale per output row instead of one for the whole matrix.

    Returns:
        ``[out]`` when ``columnwise`` else ``[1]``, positive, same dtype/device as ``weight``.

    Example:
        >>> w = torch.tensor([[0.5, -2.0], [1.0, 0.25]])
        >>> mapping_scales(w, omega=1.0, columnwise=False)  # max|W| / omega for the whole layer
        tensor([2.])
        >>> mapping_scales(w, omega=1.0, columnwise=True)   # one scale per output row
        tensor([2., 1.])
    """
    size = weight.shape[0] if columnwise else 1
    if omega <= 0:
        return torch.ones(size, dtype=weight.dtype, device=weight.device)
    if columnwise:
        alpha = weight.abs().amax(dim=1) / omega
    else:
        alpha = weight.abs().amax().reshape(1) / omega
    return alpha.masked_fill_(alpha <= 0, 1.0)


def scale_rows(weight: Tensor, scales: Tensor) -> Tensor:
    """Multiply each output row of ``weight`` by its scale (broadcasting a 1-element scale).

    Args:
        weight: ``[out, in]``.
        scales: ``[1]`` or ``[out]``.

    Returns:
        A new ``[out, in]`` tensor.

    Example:
        >>> scale_rows(torch.ones(2, 3), torch.tensor([2.0, 0.5]))
        tensor([[2.0000, 2.0000, 2.0000],
                [0.5000, 0.5000, 0.5000]])
    """
    return weight * scales.reshape(-1, 1)


def learning_rate_scale(scales: Tensor, compensation: bool) -> float:
    """Factor applied to a tile's learning rate: ``1 / mean(scales)`` with compensation, else 1.

    Args:
        scales: the mapping scales.
        compensation: ``MappingParameter.weight_scaling_lr_compensation``.

    Returns:
        The positive factor.

    Example:
        >>> learning_rate_scale(torch.tensor([0.5, 1.5]), compensation=True)
        1.0
        >>> learning_rate_scale(torch.tensor([0.25, 0.25]), compensation=True)
        4.0
        >>> learning_rate_scale(torch.tensor([0.25, 0.25]), compensation=False)
        1.0
    """
    if not compensation:
        return 1.0
    mean = float(scales.mean())
    return 1.0 / mean if mean > 0 else 1.0
