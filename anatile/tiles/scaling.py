"""Checks of the tile's scale arguments (the scale math is in :mod:`anatile.functional`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from anatile.checks import check_float, check_tensor
from anatile.config.parameters import MAX_WEIGHT_SCALING_OMEGA

__all__ = ["checked_omega", "checked_scales"]


def checked_scales(name: str, value: Any, out_size: int, like: Tensor) -> Tensor:
    """``value`` as a new ``[1]`` or ``[out_size]`` tensor with ``like``'s dtype and device.

    None gives ones like ``like``; a float gives one element.

    Raises:
        TypeError, ValueError: naming ``name`` on a wrong type, size, non-finite or zero value.
    """
    if value is None:
        return torch.ones_like(like)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor([float(value)])
    value = check_tensor(name, value)
    value = value.detach().reshape(-1).to(like.dtype).to(like.device)
    if value.numel() not in (1, out_size):
        raise ValueError(f"{name}: expected 1 or {out_size} elements, got {value.numel()}")
    if bool((value == 0).any()):
        raise ValueError(f"{name}: expected non-zero scales")
    return value.clone()


def checked_omega(weight_scaling_omega: Any, default: float) -> float:
    """The weight scaling omega to use: ``default`` for None, else a checked float in
    ``[0, MAX_WEIGHT_SCALING_OMEGA]``."""
    if weight_scaling_omega is None:
        return float(default)
    return check_float("weight_scaling_omega", weight_scaling_omega,
                       hi=MAX_WEIGHT_SCALING_OMEGA)
