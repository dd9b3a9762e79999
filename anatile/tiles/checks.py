"""Argument validation shared by the tile classes (errors name the argument)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ["check_float", "check_int", "check_tensor"]


def check_int(name: str, value: Any, lo: int) -> int:
    """Return ``value`` if it is an int ``>= lo``; else TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < lo:
        raise ValueError(f"{name}: expected >= {lo}, got {value}")
    return value


def check_float(name: str, value: Any, lo: float = 0.0, lo_open: bool = False) -> float:
    """Return ``value`` as a finite float ``>= lo`` (``> lo`` if ``lo_open``); else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < lo or (lo_open and value == lo):
        rel = ">" if lo_open else ">="
        raise ValueError(f"{name}: expected a finite number {rel} {lo}, got {value}")
    return value


def check_tensor(name: str, value: Any, shape: tuple[int, ...] | None = None) -> Tensor:
    """Return ``value`` if it is a finite floating tensor (of ``shape``, if given); else raise.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong shape or NaN/inf values.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {value.dtype}")
    if shape is not None and tuple(value.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name}: expected finite values (no NaN/inf)")
    return value
