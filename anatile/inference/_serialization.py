"""Shared plumbing of the inference objects: argument checks, and the serialization
front-end :class:`~anatile.config.base.InitFieldsMixin` (defined with the one serialization
system in :mod:`anatile.config.base`, re-exported here).
"""

from __future__ import annotations

import math
from typing import Any

from anatile.config.base import InitFieldsMixin

__all__ = ["InitFieldsMixin", "check_positive", "check_non_negative", "check_float_list"]


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return value


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as float; raise ``ValueError`` naming ``name`` unless finite and > 0."""
    out = _as_float(name, value)
    if out <= 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return out


def check_non_negative(name: str, value: Any) -> float:
    """Return ``value`` as float; raise ``ValueError`` naming ``name`` unless finite and >= 0."""
    out = _as_float(name, value)
    if out < 0:
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
    return out


def check_float_list(name: str, value: Any, *, min_len: int = 1) -> list[float]:
    """Return ``value`` as a list of finite floats of at least ``min_len`` entries."""
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name}: expected a list of numbers, got {type(value).__name__}")
    if len(value) < min_len:
        raise ValueError(f"{name}: expected at least {min_len} entries, got {len(value)}")
    return [_as_float(f"{name}[{i}]", v) for i, v in enumerate(value)]
